"""A search-space preset's `fixed:` (the method's reference trainer arguments: T3.yaml's lr-centred search with batch
1, one epoch and no weight decay; SIBL's one epoch of T iterations at batch 2) reaches the sweep's fixed values unless
the spec sets or searches that field itself.

    .venv/bin/python -m pytest tests/sweeps/test_preset_fixed.py -q
"""

from __future__ import annotations

import pytest

from search_spaces.loader import load_preset, parse_space
from sweeps.spec import parse_spec
from unlearning.errors import ConfigError

# locuslab/open-unlearning configs/trainer/T3.yaml @ bceda2cd7429ffbc96f596d37348497130754004 (args)
T3_ARGS = {"epochs": 1, "batch_size": 1, "grad_accum": 1, "weight_decay": 0.0, "warmup_epochs": 0.0}


def _spec(tmp_path, method, **extra):
    return {"name": "t", "models": ["tofu-mini/target"], "data": {"source": "tofu-mini", "forget_split": "forget10"},
            "method": {"name": method}, "storage": str(tmp_path / "runs"), **extra}


def test_t3_preset_pins_the_reference_trainer_arguments(tmp_path):
    assert load_preset("t3").fixed == T3_ARGS
    lr = load_preset("t3").params["lr"]
    assert lr.low < 5e-2 < lr.high                                    # the search is around T3.yaml's lr
    spec = parse_spec(_spec(tmp_path, "T3"))
    assert {k: spec.fixed[k] for k in T3_ARGS} == T3_ARGS
    own = parse_spec(_spec(tmp_path, "T3", fixed={"epochs": 3}))      # the spec's own value wins
    assert own.fixed["epochs"] == 3 and own.fixed["batch_size"] == 1
    searched = parse_spec(_spec(tmp_path, "T3", search_space={"preset": "t3", "batch_size": [1, 2]}))
    assert "batch_size" not in searched.fixed                         # searched, so not pinned


def test_sibl_preset_runs_one_epoch_of_t_iterations_at_batch_2(tmp_path):
    spec = parse_spec(_spec(tmp_path, "SIBL"))
    assert (spec.fixed["epochs"], spec.fixed["batch_size"], spec.fixed["weight_decay"]) == (1, 2, 0.0)


def test_a_preset_fixed_typo_names_the_file(tmp_path, monkeypatch):
    import search_spaces.loader as loader

    (tmp_path / "bad.yaml").write_text("methods: [T3]\nfixed: {epochz: 1}\nparams: {lr: {low: 1.0e-3, high: 1.0e-2}}\n")
    monkeypatch.setattr(loader, "PRESET_DIR", tmp_path)
    with pytest.raises(ConfigError) as err:
        load_preset("bad")
    assert "\n" not in str(err.value) and "fixed.epochz" in str(err.value)
    assert parse_space({"lr": {"low": 1e-3, "high": 1e-2}}).fixed == {}


def test_lmcleaner_preset_reads_the_zoo_log_and_runs_one_step(tmp_path):
    spec = parse_spec(_spec(tmp_path, "LMCleaner"))
    assert (spec.fixed["training_log"], spec.fixed["epochs"], spec.fixed["weight_decay"]) == ("zoo", 1, 0.0)
