"""points.jsonl round trip and `export`: the chosen points become train configs that the train config
parser accepts, with every hyperparameter, the chosen epoch, the seed, versions, topology and the
open-unlearning command line.

    .venv/bin/python -m pytest tests/sweeps/test_results_export.py -q
"""

from __future__ import annotations

import json

import pytest
import yaml

from sweeps.selection.export import export, library_versions, reference_method_args
from sweeps.recording.results import POINTS_FILE, read_results, resolve_sweep
from unlearning.evaluation.config import flat_metrics
from unlearning.errors import ConfigError

from sweep_data import TRIALS


def test_results_round_trip(finished_sweep):
    spec, sweep_dir = finished_sweep
    res = read_results(sweep_dir)
    assert len(res.points) == sum(len(e) for _, _, e in TRIALS.values())
    p = next(p for p in res.points if p.key == ("dv2", 2))
    assert p.metrics["forget_quality"] == 1e-2 and p.hparams == {"lr": 2e-4, "epochs": 2, "beta_dv": 0.7}
    assert p.variant == "dv" and p.mlflow_run_id == "run-dv2"
    assert next(p for p in res.points if p.key == ("np2", 1)).metrics["forget_quality"] is None  # NaN -> null
    assert {t: s.status for t, s in res.trials.items()} == {"dv1": "finished", "dv2": "finished",
                                                            "np1": "finished", "np2": "failed"}
    assert res.trials["np2"].reason == "loss became NaN at step 3"
    assert res.reference("tofu-mini/target") ["model_utility"] == 0.60   # from the epoch-0 points
    # a rewritten point replaces the old one; a torn last line (killed driver) is skipped and counted
    path = sweep_dir / POINTS_FILE
    lines = path.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["metrics"]["model_utility"] = 0.123
    path.write_text("\n".join(lines + [json.dumps(rec), '{"kind": "point", "trial_']) + "\n")
    res2 = read_results(sweep_dir)
    assert len(res2.points) == len(res.points) and res2.skipped_lines == 1
    assert next(p for p in res2.points if p.key == (rec["trial_id"], rec["epoch"])).metrics["model_utility"] == 0.123
    # the folder and the spec file lead to the same sweep
    spec2, dir2 = resolve_sweep(str(sweep_dir))
    assert dir2 == sweep_dir.resolve() and spec2.searches()[0].space == spec.searches()[0].space


def test_flat_metrics_from_evaluator_output():
    out = flat_metrics({"forget_quality": {"agg_value": 0.2, "value_by_index": {}}, "model_utility": 0.5,
                        "forget_Q_A_gibberish_rate": {"agg_value": 0.25}, "privleak": {"agg_value": float("nan")},
                        "notes": "x"})
    assert out == {"forget_quality": 0.2, "model_utility": 0.5, "forget_Q_A_gibberish_rate": 0.25,
                   "privleak": None, "gibberish_rate": 0.25}


def _load(path):
    return yaml.safe_load(path.read_text())


def test_export_knee(finished_sweep, tmp_path):
    spec, sweep_dir = finished_sweep
    versions = {"torch": "9.9", "ray": "1.0"}
    paths = export(read_results(sweep_dir), "knee", tmp_path / "final", spec, versions=versions)
    # hand computation (conftest data): front dv2:1, dv1:1, dv2:2, dv1:2; normalised minimisation coords
    # (x = (-log10 fq - 1)/3 as -log10 fq spans 1..4, y = (0.60 - mu)/0.03) -> line x + y = 1 through
    # dv1:2 (0, 1) and dv2:1 (1, 0); 1 - x - y: dv1:1 0, dv2:2 1/6 -> the knee is dv2 after epoch 2
    assert [p.name for p in paths] == ["tofu-mini-target.dv__dv2__e2.yaml"]
    text = paths[0].read_text()
    assert text.startswith(f"# unlearn-sweep train {paths[0]}\n")
    doc = _load(paths[0])
    assert (doc["model"]["name"], doc["model"]["dtype"]) == ("tofu-mini/target", "float32")
    assert {k: v for k, v in doc["data"].items() if v is not None} == {
        "benchmark": "tofu", "source": "tofu-mini", "forget_split": "forget10", "max_length": 512}
    assert doc["method"]["name"] == "NPO" and doc["method"]["baldro"] == "dv"
    hp = doc["method"]["hparams"]
    assert hp["beta_dv"] == 0.7 and hp["beta"] == 0.1 and hp["dv_mode"] == "softmin" and hp["gamma"] == 1.0
    tr = doc["train"]
    assert (tr["lr"], tr["epochs"], tr["seed"], tr["batch_size"], tr["grad_accum"]) == (2e-4, 2, 0, 8, 4)
    assert (tr["engine"], tr["zero_stage"], tr["warmup_epochs"]) == ("deepspeed", 0, 1.0)
    assert doc["eval"]["enabled"] and doc["eval"]["settings"]["forget_split"] == "forget10"
    prov = doc["provenance"]
    assert (prov["trial_id"], prov["epoch"], prov["trial_epochs"], prov["method"]) == ("dv2", 2, 2, "DrNPO")
    assert prov["replay"].startswith("exact")
    assert prov["objectives"] == {"forget_quality": 1e-2, "model_utility": 0.585}
    assert prov["mlflow_run_id"] == "run-dv2" and prov["versions"] == versions
    assert prov["topology"] == {"workers": 1, "cpus_per_worker": 1.0, "gpus_per_worker": 0.0, "engine": "deepspeed",
                                "zero_stage": 0, "dtype": "float32"}
    assert prov["retain_model"] == "tofu-mini/retain90"
    cmd = prov["open_unlearning_command"]
    assert cmd in text and cmd.startswith("none: ") and "embedded zoo" in cmd   # no hub equivalent of the zoo
    # what `unlearn-sweep train` reads: the train part validates with the train config's own parser
    from unlearning.train.config import parse_train_config

    doc.pop("provenance")
    cfg = parse_train_config(doc)
    assert cfg.train.lr == 2e-4 and cfg.method.baldro == "dv"


def test_export_trial_epoch_pareto_and_errors(finished_sweep, tmp_path):
    spec, sweep_dir = finished_sweep
    res = read_results(sweep_dir)
    (path,) = export(res, "dv1:1", tmp_path / "a", spec, versions={})
    doc = _load(path)
    # an earlier epoch of a 3-epoch linear-decay trial: the 3-epoch schedule stopped after epoch 1
    assert doc["train"]["epochs"] == 3 and doc["train"]["stop_after_epoch"] == 1
    assert doc["provenance"]["trial_epochs"] == 3 and doc["provenance"]["replay"].startswith("exact")
    (path,) = export(res, "np1", tmp_path / "b", spec, versions={})   # last evaluated epoch, plain NPO
    doc = _load(path)
    assert (doc["provenance"]["epoch"], doc["method"]["baldro"]) == (2, None)
    assert "beta_dv" not in doc["method"]["hparams"]
    paths = export(res, "pareto", tmp_path / "c", spec, versions={})
    assert sorted(p.name.split("__", 1)[1] for p in paths) == ["dv1__e1.yaml", "dv1__e2.yaml", "dv2__e1.yaml",
                                                               "dv2__e2.yaml"]
    assert library_versions()["torch"].startswith("2.")
    with pytest.raises(ConfigError, match=r"field 'pick'.*no evaluated trial 'nope'"):
        export(res, "nope", tmp_path / "d", spec)
    with pytest.raises(ConfigError, match=r"field 'pick'.*evaluated at epochs \[0, 1, 2, 3\]"):
        export(res, "dv1:7", tmp_path / "d", spec)


def test_open_unlearning_command_of_a_hub_model_runs_as_printed():
    """For hub models the export prints open-unlearning's own command line (its model and retain-log names)."""
    from sweeps.selection.export import open_unlearning_command
    from sweeps.spec import load_spec
    from unlearning.train.fields import with_values

    spec = load_spec("tofu-llama-3.2-1b-drnpo", check_models=False)
    plan = spec.searches()[0]
    cfg = with_values(plan.base, {"lr": 2e-4, "epochs": 2, "grad_accum": 4, "beta_dv": 0.7})
    cmd = open_unlearning_command(spec, plan, cfg, "task")
    for part in ("python src/train.py --config-name=unlearn.yaml", "experiment=unlearn/tofu/default",
                 "trainer=DrNPO", "forget_split=forget10", "retain_split=retain90", "holdout_split=holdout10",
                 "model=Llama-3.2-1B-Instruct",
                 "model.model_args.pretrained_model_name_or_path=open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
                 "retain_logs_path=saves/eval/tofu_Llama-3.2-1B-Instruct_retain90/TOFU_EVAL.json",
                 "trainer.args.learning_rate=0.0002", "trainer.args.num_train_epochs=2",
                 "trainer.args.per_device_train_batch_size=8", "trainer.args.gradient_accumulation_steps=4",
                 "trainer.method_args.beta_dv_forget=0.7", "trainer.method_args.beta=0.1",
                 "trainer.method_args.forget_dro=true"):
        assert part in cmd, part
    assert "dv_mode" not in cmd  # our option, not the reference's


def test_reference_names_of_baldro_parameters():
    assert reference_method_args("SimNPO", "dv", {"beta_dv": 1.5, "beta_dv_retain": 1.0, "delta": 0.0}) == {
        "sigma_forget": 1.5, "sigma_retain": 1.0, "delta": 0.0}
    assert reference_method_args("NPO", "dv", {"beta_dv": 2.0, "dv_mode": "softmin"}) == {"beta_dv_forget": 2.0}
    assert reference_method_args("NPO", "g", {"group_ratio": 0.3, "beta": 0.1}) == {"sampling_ratio": 0.3, "beta": 0.1}


def test_a_copied_sweep_is_read_anywhere_but_resumed_only_where_it_ran(finished_sweep, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from sweeps.recording.results import moved_sweep_check
    from unlearn_sweep.cli import app

    spec, sweep_dir = finished_sweep
    moved_sweep_check(*resolve_sweep(str(sweep_dir)))  # where it ran: fine
    copy = tmp_path / "elsewhere" / sweep_dir.name
    shutil.copytree(sweep_dir, copy)
    spec2, dir2 = resolve_sweep(str(copy))
    assert dir2 == copy.resolve() and len(read_results(dir2).points) == len(read_results(sweep_dir).points)
    result = CliRunner().invoke(app, ["resume", str(copy)])  # `main` prints a UserError as one line, exit 2
    assert isinstance(result.exception, ConfigError), result.output
    message = str(result.exception)
    assert "\n" not in message and "field 'storage'" in message, message
    assert f"this sweep ran in {sweep_dir.resolve()}" in message and "resume it there" in message, message
    assert not (sweep_dir / "driver.lock").exists() and not (copy / "driver.lock").exists()  # nothing started
