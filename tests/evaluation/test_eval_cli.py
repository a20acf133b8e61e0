"""`unlearn-sweep eval`: the real CLI on a saved tiny model and a trimmed tofu-mini folder.

Run: pytest tests/evaluation/test_eval_cli.py -q
"""

from __future__ import annotations

import logging

import pytest
import torch
from typer.testing import CliRunner

from eval_fixtures import small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearn_sweep.cli import app
from unlearning.errors import ConfigError
from unlearning.metrics.report import read_eval, read_summary

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tok = tofu_tokenizer()
    for name, seed in (("model", 0), ("retain", 1)):
        tiny_llama(len(tok), seed=seed, dtype=torch.float32).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root, small_tofu_dir(root, rows=3)


def test_eval_command_writes_ou_logs(saved, monkeypatch):
    root, data = saved
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(root / "cache"))  # the retain reference is cached here
    out = root / "out"
    result = CliRunner().invoke(app, [
        "eval", str(root / "model"), "--benchmark", "tofu", "--data", str(data), "--template", "plain",
        "--retain-model", str(root / "retain"), "--max-new-tokens", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["forget_quality"] is not None and 0 <= summary["forget_quality"] <= 1
    assert {"model_utility", "privleak", "forget_Q_A_gibberish", "mia_min_k_plus_plus"} <= set(summary)
    assert len(read_eval(out)["forget_truth_ratio"]["value_by_index"]) == 3
    assert "forget_quality" in result.output and "TOFU_EVAL.json" in result.output
    assert len(list((root / "cache" / "eval_references").iterdir())) == 1


def test_eval_command_metric_subset_and_retain_logs(saved):
    root, data = saved
    ref = root / "out_ref"
    assert CliRunner().invoke(app, ["eval", str(root / "retain"), "--benchmark", "tofu", "--data", str(data),
                                    "--template", "plain", "--metrics", "forget_quality,privleak",
                                    "--out", str(ref)]).exit_code == 0
    out = root / "out_subset"
    result = CliRunner().invoke(app, ["eval", str(root / "retain"), "--benchmark", "tofu", "--data", str(data),
                                      "--template", "plain", "--metrics", "forget_quality,privleak",
                                      "--retain-logs", str(ref), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["forget_quality"] == 1.0 and summary["privleak"] == pytest.approx(0.0, abs=1e-6)
    assert set(summary) == {"forget_quality", "forget_truth_ratio", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob",
                            "privleak", "mia_min_k"}


def test_eval_command_help_and_user_errors(saved):
    root, data = saved
    help_text = CliRunner().invoke(app, ["eval", "--help"]).output
    assert "Examples" in help_text and "unlearn-sweep eval tofu-mini/target" in help_text
    from unlearn_sweep.commands.eval import choices

    listed = " ".join(help_text.replace("│", " ").split())  # the option panel's wrapped lines
    assert all(c in listed for c in choices()) and "wmdp-mini" in choices()  # --benchmark lists every choice
    bad = CliRunner().invoke(app, ["eval", str(root / "model"), "--benchmark", "tofu", "--data", str(data),
                                   "--template", "plain", "--metrics", "forget_qualty", "--out", str(root / "x")])
    assert isinstance(bad.exception, ConfigError) and "forget_qualty" in str(bad.exception)
    bad = CliRunner().invoke(app, ["eval", str(root / "model"), "--benchmark", "tofu-maxi", "--out", str(root / "x")])
    assert isinstance(bad.exception, ConfigError) and "tofu-mini" in str(bad.exception)


def test_eval_command_runs_lkf_through_its_benchmark(saved, tmp_path):
    """`--benchmark lkf` names the LKF benchmark's `cli_choices` (unlearning/benchmarks/lkf.py): LKF_EVAL.json,
    and no retain model."""
    from unlearning.benchmarks.lkf_mini import write_lkf_mini

    root, data = saved
    lkf = write_lkf_mini(data, tmp_path / "lkf")
    args = ["eval", str(root / "model"), "--benchmark", "lkf", "--data", str(lkf), "--template", "plain",
            "--metrics", "forget_Q_A_ROUGE,retain_Q_A_ROUGE", "--max-new-tokens", "4"]
    out = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    assert set(read_eval(tmp_path / "out" / "LKF_EVAL.json")) == {"forget_Q_A_ROUGE", "retain_Q_A_ROUGE"}
    bad = CliRunner().invoke(app, [*args, "--retain-model", str(root / "retain"), "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, ConfigError) and "no retain model" in str(bad.exception)
