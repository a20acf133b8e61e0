"""Search-space presets and the loader: typed parsing, canonical names, Optuna distributions, Tune domains.

    .venv/bin/python -m pytest tests/sweeps/test_search_spaces.py -q
"""

from __future__ import annotations

import math
import random

import pytest
import yaml

from search_spaces.loader import (PRESET_DIR, CategoricalParam, FloatParam, IntParam, list_presets, load_preset,
                                  parse_space, read_yaml)
from unlearning.errors import ConfigError


def test_forms_are_typed():
    space = parse_space({
        "learning_rate": {"low": 1e-5, "high": 5e-5, "log": True},   # OU spelling -> lr
        "epochs": {"low": 1, "high": 3},                            # int by name
        "sigma_forget": {"low": 0.5, "high": 10},                   # BalDRO alias -> beta_dv, float
        "grad_accum": [2, 4],
        "dv_mode": {"choices": ["softmin", "softmax"]},
        "beta": {"type": "int", "low": 1, "high": 9, "step": 2},
    })
    p = space.params
    assert list(p) == ["lr", "epochs", "beta_dv", "grad_accum", "dv_mode", "beta"]
    assert p["lr"] == FloatParam(low=1e-5, high=5e-5, log=True)
    assert p["epochs"] == IntParam(low=1, high=3)
    assert p["beta_dv"] == FloatParam(low=0.5, high=10.0)
    assert p["grad_accum"] == CategoricalParam(choices=[2, 4])
    assert p["dv_mode"] == CategoricalParam(choices=["softmin", "softmax"])
    assert p["beta"] == IntParam(low=1, high=9, step=2)


@pytest.mark.parametrize("raw,field,fix", [
    ({"lr": {"low": 5e-5, "high": 1e-5}}, "lr.low", "swap them"),
    ({"lr": {"low": 1e-5, "high": 1e-5}}, "lr.high", "empty range"),
    ({"epochs": {"low": 3, "high": 3}}, "epochs.high", "empty range"),
    ({"lr": {"low": -1.0, "high": 1.0, "log": True}}, "lr.low", "low > 0"),
    ({"lr": {"low": 1e-5, "hi": 1e-4}}, "lr.hi", "unknown key"),
    ({"lr": {"low": 1e-5}}, "lr.high", "required"),
    ({"lr": {"type": "uniform", "low": 0.1, "high": 1}}, "lr.type", "categorical"),
    ({"epochs": {"low": 1, "high": 4, "step": 2}}, "epochs.step", "multiple of step"),
    ({"dv_mode": ["softmin", "softmin"]}, "dv_mode.choices", "listed twice"),
    ({"dv_mode": []}, "dv_mode.choices", "at least one choice"),
    ({"learning_rte": [1e-5]}, "learning_rte", "did you mean 'learning_rate'"),
    ({"baldro": ["dv", "none"]}, "baldro", "unknown hyperparameter"),
    ({"lr": [1e-5], "learning_rate": [2e-5]}, "learning_rate", "both mean 'lr'"),
    ({"preset": "npo", "exclude": ["delta"]}, "exclude", "nothing to exclude"),
])
def test_bad_dimensions_are_clear(raw, field, fix):
    with pytest.raises(ConfigError) as info:
        parse_space(raw)
    msg = str(info.value)
    assert f"field '{field}'" in msg and fix in msg and "\n" not in msg


def test_yaml_floats_without_dot(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("lr: {low: 1e-5, high: 5E-5, log: true}\nchoices: [1e-5, 2e-5, 10, x]\n")
    raw = read_yaml(path)
    assert raw["lr"] == {"low": 1e-5, "high": 5e-5, "log": True}
    assert raw["choices"] == [1e-5, 2e-5, 10, "x"] and isinstance(raw["choices"][2], int)


def test_presets_match_the_published_ranges():
    names = list_presets()
    for name in names:
        text = (PRESET_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# ") and load_preset(name).params
        assert set(yaml.safe_load(text)) <= {"description", "methods", "params", "fixed"}
    npo = load_preset("npo").params   # BalDRO's scripts (nxZhai/BalDRO @ 12a0b0cc35de, scripts/unlearn/**): lr
                                      # 1e-5..5e-5, epochs 5/10, beta_dv 0.5..10, ratio 0.25..0.75
    assert (npo["lr"].low, npo["lr"].high, npo["lr"].log) == (1e-5, 5e-5, True)
    assert npo["epochs"].choices == [5, 10]
    assert (npo["beta_dv"].low, npo["beta_dv"].high, npo["beta_dv"].log) == (0.5, 10.0, True)
    assert (npo["group_ratio"].low, npo["group_ratio"].high) == (0.25, 0.75)
    mini = load_preset("tofu-mini-npo").params
    assert (mini["lr"].low, mini["lr"].high, mini["lr"].log) == (5e-4, 2.5e-3, True)
    assert (mini["alpha"].low, mini["alpha"].high, mini["alpha"].log) == (3.0, 10.0, True)
    assert "epochs" not in mini  # fixed at 15 by the default sweep
    with pytest.raises(ConfigError, match=r"field 'preset'.*did you mean 'npo'"):
        load_preset("npoo")


def test_optuna_distributions_sample_inside_the_ranges():
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = parse_space({"lr": {"low": 1e-5, "high": 5e-5, "log": True}, "epochs": {"low": 1, "high": 3},
                         "beta_dv": {"low": 0.5, "high": 10.0}, "dv_mode": ["softmin", "softmax"]})
    dists = space.to_optuna()
    assert dists["lr"] == FloatDistribution(1e-5, 5e-5, log=True)
    assert dists["epochs"] == IntDistribution(1, 3)
    assert dists["beta_dv"] == FloatDistribution(0.5, 10.0)
    assert dists["dv_mode"] == CategoricalDistribution(["softmin", "softmax"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        t = study.ask(dists)
        assert 1e-5 <= t.params["lr"] <= 5e-5 and 0.5 <= t.params["beta_dv"] <= 10
        seen.add(t.params["epochs"])
        study.tell(t, 0.0)
    assert seen == {1, 2, 3}


def test_tune_domains_sample_inside_the_ranges():
    pytest.importorskip("ray")
    space = parse_space({"lr": {"low": 1e-5, "high": 5e-5, "log": True}, "epochs": {"low": 1, "high": 3},
                         "beta_dv": {"low": 0.5, "high": 10.0}, "grad_accum": [2, 4],
                         "layer": {"low": 2, "high": 8, "step": 2}, "batch_size": {"low": 1, "high": 64, "log": True}})
    domains = space.to_tune()
    random.seed(0)
    import numpy as np

    np.random.seed(0)
    draws = {k: [d.sample() for _ in range(300)] for k, d in domains.items()}
    assert all(1e-5 <= x <= 5e-5 for x in draws["lr"])
    # log-uniform: the median of log10 draws is near the middle of [log10 1e-5, log10 5e-5]
    logs = sorted(math.log10(x) for x in draws["lr"])
    assert abs(logs[150] - (math.log10(1e-5) + math.log10(5e-5)) / 2) < 0.1
    assert set(draws["epochs"]) == {1, 2, 3}                  # upper bound included
    assert set(draws["grad_accum"]) == {2, 4}
    assert set(draws["layer"]) == {2, 4, 6, 8}
    assert min(draws["batch_size"]) >= 1 and max(draws["batch_size"]) <= 64
    assert all(0.5 <= x <= 10 for x in draws["beta_dv"])
