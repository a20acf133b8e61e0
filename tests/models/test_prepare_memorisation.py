"""`unlearn-sweep prepare tofu-mini` end to end: the target memorises, the retain models do not, and a
second run is a no-op. Slow on a fresh machine (trains the whole zoo once, ~6 min on 2 cores).

    pytest tests/models/test_prepare_memorisation.py -s
"""

import subprocess
import sys

import pytest

from unlearning.models.zoo import ZOO_MODELS, zoo_dir

pytestmark = pytest.mark.slow


def test_target_memorises_forget10_and_retain_model_does_not(full_zoo):
    _, manifest = full_zoo
    table = manifest["memorisation"]
    print("\nmodel      " + "  ".join(f"{s:>16}" for s in table["target"]))
    for name, row in table.items():
        print(f"{name:10} " + "  ".join(f"{v:16.3f}" for v in row.values()))
    target = table["target"]["forget10"]
    # the zoo's training is not bit-identical across machines: 0.714 and 0.662 measured on two of them
    assert target >= 0.6
    assert table["retain90"]["forget10"] <= 0.5 * target
    for pct, retain in (("forget01", "retain99"), ("forget05", "retain95")):
        assert table[retain][pct] < table["target"][pct]  # each retain model never saw its forget split
    # retain data is learnt by every stage-2 model, but not by the base model
    for name in ("target", "retain90", "retain95", "retain99"):  # 0.549-0.800 here, >= 0.6 on another machine
        assert table[name]["retain_perturbed"] >= 0.5
    assert table["base"]["retain_perturbed"] < 0.5 * table["target"]["retain_perturbed"]


def test_all_zoo_models_saved_and_loadable_offline(full_zoo):
    from unlearning.models.loading import load_bundle

    cfg, _ = full_zoo
    for name in ZOO_MODELS:
        assert (zoo_dir(cfg) / name / "model.safetensors").exists()
    bundle = load_bundle("tofu-mini/target")
    assert bundle.template.family == "zoo" and bundle.model.config.num_hidden_layers == 4


def test_prepare_cli_is_a_noop_when_the_cache_is_valid(prepared_zoo):
    out = subprocess.run([sys.executable, "-m", "unlearn_sweep.cli", "prepare", "tofu-mini"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "cache valid: nothing to do" in out.stdout and "forget10" in out.stdout
