"""`run_train` and `unlearn-sweep train` end to end on a tiny local model folder and a TOFU-layout data folder.

Run: pytest tests/train/test_run_cli.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from train_fixtures import answer_prob, make_model, qa_rows
from unlearning.train.config import parse_train_config
from unlearning.train.run import run_train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tok):
    root = tmp_path_factory.mktemp("assets")
    (root / "data").mkdir()
    forget, retain = qa_rows()
    for split, rows in (("forget10", forget), ("retain90", retain)):
        (root / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = make_model(len(tok), seed=3)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    return root


def _config(assets: Path, out: Path, **train) -> dict:
    return {
        "model": {"name": str(assets / "model"), "template": "plain"},
        "data": {"source": str(assets / "data"), "forget_split": "forget10", "limit": 8, "max_length": 128},
        "method": {"name": "NPO", "hparams": {"beta": 0.1}},
        "train": {"engine": "torch", "lr": 1e-3, "epochs": 2, "batch_size": 4, "grad_accum": 1,
                  "warmup_epochs": 0.0, **train},
        "output_dir": str(out),
    }


def test_run_train_writes_model_history_and_resumes(assets, tmp_path, tok):
    calls = []
    cfg = parse_train_config(_config(assets, tmp_path / "run"))
    result = run_train(cfg, eval_hook=lambda m, e: calls.append(e) or {"epoch_seen": e})
    assert calls == [0, 1, 2] and [e["epoch_seen"] for e in result["evals"]] == [0, 1, 2]
    out = tmp_path / "run"
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["steps"]) == 4 and hist["steps"][-1] == result["final"]
    assert yaml.safe_load((out / "config.yaml").read_text())["method"]["name"] == "NPO"
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(out / "model")
    before = make_model(len(tok), seed=3)
    forget = qa_rows()[0]
    assert answer_prob(saved, tok, forget) < answer_prob(before, tok, forget)   # NPO lowered it

    again = run_train(cfg)                      # same output dir: resumes from the last checkpoint, no new steps
    assert again["history"]["resumed_from_step"] == 4 and len(again["history"]["steps"]) == 4


def test_eval_section_picks_the_epochs_the_hook_runs(assets, tmp_path):
    raw = _config(assets, tmp_path / "x", epochs=3)
    raw["eval"] = {"on_start": False, "every": None}   # only the final epoch
    calls = []
    result = run_train(parse_train_config(raw), eval_hook=lambda m, e: calls.append(e) or {"e": e})
    assert calls == [3]
    assert result["evals"] == [{"epoch": 3, "step": 6, "e": 3}]


@pytest.mark.slow
def test_cli_runs_deepspeed_zero2(assets, tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(assets, tmp_path / "ignored", engine="deepspeed", zero_stage=2)))
    proc = subprocess.run([sys.executable, "-m", "unlearn_sweep.cli", "train", str(cfg_path), "--out",
                           str(tmp_path / "cli")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 optimizer steps: loss" in proc.stdout
    assert (tmp_path / "cli" / "model" / "config.json").is_file()
    assert not (tmp_path / "ignored").exists()


def test_fractional_eval_points_and_a_fractional_stop_replays_the_point(assets, tmp_path, tok):
    """eval.every 0.5 evaluates twice per epoch; stop_after_epoch 1.5 stops at that very point (same weights)."""
    forget = qa_rows()[0]
    raw = _config(assets, tmp_path / "half", epochs=2)          # 8 rows / batch 4 = 2 optimizer steps per epoch
    raw["eval"] = {"every": 0.5}
    result = run_train(parse_train_config(raw), eval_hook=lambda m, e: {"p": answer_prob(m, tok, forget)})
    assert [(e["epoch"], e["step"]) for e in result["evals"]] == [(0, 0), (0.5, 1), (1, 2), (1.5, 3), (2, 4)]
    probs = {e["epoch"]: e["p"] for e in result["evals"]}
    assert len(set(probs.values())) == 5                          # the model changes between every two points

    replay = _config(assets, tmp_path / "replay", epochs=2, stop_after_epoch=1.5)
    replay["eval"] = {"every": None, "on_start": False}
    out = run_train(parse_train_config(replay), eval_hook=lambda m, e: {"p": answer_prob(m, tok, forget)})
    assert len(out["history"]["steps"]) == 3 and out["evals"][-1]["epoch"] == 1.5
    assert out["evals"][-1]["p"] == pytest.approx(probs[1.5], rel=1e-5)
    assert out["evals"][-1]["p"] != pytest.approx(probs[2], rel=1e-5)
