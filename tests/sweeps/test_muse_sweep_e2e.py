"""A MUSE sweep end to end on muse-mini: real Ray, Optuna and MLflow (SQLite), MUSE's metrics at every evaluation
point, a trade-off on the front, and the knee exported and replayed by `unlearn-sweep train`'s code.

    pytest tests/sweeps/test_muse_sweep_e2e.py -s

Slow: the muse-mini zoo is prepared on first use (about a minute on 2 cores, then cached), then 2 trials of the
preset's recipe (a grid of two learning rates) run two at a time.
"""

from __future__ import annotations


import pytest
import yaml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def muse_zoo():
    from unlearning.models.muse_prepare import prepare_muse
    from unlearning.models.muse_zoo import MuseZooConfig

    return prepare_muse(MuseZooConfig())


def test_muse_mini_sweep_trades_forgetting_for_retain_knowledge_and_its_knee_replays(muse_zoo, ray_local, tmp_path):
    import torch

    from sweeps.selection.export import export
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import PRESET_DIR, load_spec
    from unlearning.train.config import load_train_config
    from unlearning.train.run import run_train

    raw = yaml.safe_load((PRESET_DIR / "muse-mini.yaml").read_text())
    raw.update(name="muse-e2e", storage=str(tmp_path / "sweeps"),
               fixed={**raw["fixed"], "epochs": 4, "engine": "torch"},
               search_space={"lr": [1.0e-3, 5.0e-3], "alpha": [3.0]}, search={"sampler": "grid"},
               eval={**raw["eval"], "every": 2},
               budget={"num_trials": 2, "max_concurrent": 2, "max_failures": 0})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    spec = load_spec(tmp_path / "spec.yaml")
    sweep_dir = run_sweep(spec)
    results = read_results(sweep_dir)

    assert {t.status for t in results.trials.values()} == {"finished"} and len(results.trials) == 2
    points = [p for p in results.points if p.epoch > 0]
    assert sorted(p.epoch for p in points) == [2, 2, 4, 4]
    target = results.reference("muse-mini/target")
    # the zoo's target remembers the forget articles verbatim and their facts, and the retain authors' facts
    assert target["forget_verbmem_ROUGE"] > 0.7 and target["forget_knowmem_ROUGE"] > 0.8
    assert target["retain_knowmem_ROUGE"] > 0.8 and target["privleak"] < -50
    for p in points:
        assert {"forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak",
                "gibberish_rate"} <= set(p.metrics)
    # the trade-off: the stronger learning rate forgets more (verbatim and knowledge) and keeps less
    strong = [p for p in points if p.hparams["lr"] == 5.0e-3]
    weak = [p for p in points if p.hparams["lr"] == 1.0e-3]
    assert min(p.metrics["forget_verbmem_ROUGE"] for p in strong) < 0.7 * target["forget_verbmem_ROUGE"]
    assert min(p.metrics["forget_knowmem_ROUGE"] for p in strong) < min(p.metrics["forget_knowmem_ROUGE"] for p in weak)
    assert max(p.metrics["retain_knowmem_ROUGE"] for p in weak) >= 0.9 * target["retain_knowmem_ROUGE"]

    # the front and its knee; the knee replays as a final run (same seed and order: the same metrics)
    [path] = export(results, "knee", tmp_path / "final", spec)
    cfg = load_train_config(path)
    assert cfg.data.benchmark == "muse" and cfg.provenance["pick"].startswith("knee")
    point = next(p for p in points if (p.trial_id, p.epoch) == (cfg.provenance["trial_id"], cfg.provenance["epoch"]))
    torch.set_num_threads(1)
    replayed = run_train(cfg)["evals"][-1]
    for key in ("forget_verbmem_ROUGE", "forget_knowmem_ROUGE", "retain_knowmem_ROUGE"):
        # greedy generations of the same weights: only float summation order differs between processes
        assert replayed[key] == pytest.approx(point.metrics[key], rel=0.02, abs=1e-9), key
