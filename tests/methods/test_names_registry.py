"""Names, aliases, defaults (docs/methods.md) and errors of build_method / canonicalize."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unlearning.errors import ConfigError
from unlearning.methods import METHODS, build_method, canonicalize, method_defaults
from unlearning.methods.baldro import BalDRODV, BalDRODVConfig, BalDROG, BalDROGConfig
from unlearning.methods.names import CANONICAL_HPARAMS, CANONICAL_METHODS, METHOD_ALIASES


def test_canonicalize_aliases():
    assert canonicalize({"beta_dv_forget": 2.0, "sampling_ratio": 0.3, "sigma_retain": 4.0, "npo_coeff": 0.25,
                         "layer_id": 3, "baldro": "BalDRO-DV", "retain_loss_type": "jensun"}) == {
        "beta_dv": 2.0, "group_ratio": 0.3, "beta_dv_retain": 4.0, "gamma": 0.25, "layer": 3,
        "baldro": "dv", "retain_loss_type": "JSD"}
    assert canonicalize({"sigma_forget": 1.0}) == {"beta_dv": 1.0}


def test_canonicalize_errors():
    with pytest.raises(ConfigError, match="'sigma_forget' and 'beta_dv' both set 'beta_dv'"):
        canonicalize({"beta_dv": 1.0, "sigma_forget": 2.0})
    with pytest.raises(ConfigError, match="field 'lr_typo'"):
        canonicalize({"lr_typo": 1.0})
    with pytest.raises(ConfigError, match="baldro"):
        canonicalize({"baldro": "sometimes"})


def test_canonical_hparams_cover_every_config():
    names = {"baldro"}
    for cls in list(METHODS.values()):
        names |= {f.name for f in dataclasses.fields(cls.config_cls)}
    names |= {f.name for f in dataclasses.fields(BalDRODVConfig)} | {f.name for f in dataclasses.fields(BalDROGConfig)}
    assert names == set(CANONICAL_HPARAMS)
    assert set(METHODS) == set(CANONICAL_METHODS)


# the reference defaults (open-unlearning configs/trainer/*.yaml @ d3d7cf9e, BalDRO's and the fork's), written out
# by hand
SPEC_DEFAULTS = {
    "GradDiff": {"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
    "IdkDPO": {"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
    "NPO": {"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
    "SimNPO": {"beta": 4.5, "delta": 0.0, "gamma": 0.125, "alpha": 1.0, "retain_loss_type": "NLL"},
    "RMU": {"layer": 7, "steering_coeff": 2.0, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "EMBED_DIFF",
            "trainable_params_regex": ".*", "faithful_broadcast": False},
    "SatImp": {"beta1": 5.0, "beta2": 1.0, "gamma": 0.1, "alpha": 1.0, "retain_loss_type": "NLL"},
    "WGA": {"beta": 1.0, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL", "form": "token"},
    "TNPO": {"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL", "detach_weights": True},
    "UNDIAL": {"beta": 10.0, "gamma": 1.0, "alpha": 0.0, "retain_loss_type": "NLL", "faithful_ignore_index": False},
    "JensUn": {"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "JSD", "faithful_eps": False},
    # open-unlearning class defaults (ceu.py, gru.py; these trainers ship no yaml)
    "CEU": {"ignore_first_n_answer_tokens": 1, "gamma": 1.0, "alpha": 0.0},
    # configs/trainer/PDU.yaml (retain_loss_eps is mandatory there, ???; 0 here)
    "PDU": {"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL", "retain_loss_eps": 0.0, "primal_dual": True,
            "dual_step_size": 1.0, "dual_update_upon": "step", "dual_warmup_epochs": 5},
    "GRU": {"gamma_gru": 0.8, "forget_loss_type": "GradAscent", "beta": 0.1},
    # open-unlearning configs/trainer/SIBL.yaml @ a291f94 (T, epsilon, K, gamma under the project's names)
    "SIBL": {"outer_steps": 20, "retain_loss_eps": 0.1, "rho": 1.0, "inner_steps": 10, "eta_in": 1e-4, "eta_theta":
    1e-4, "l1_coeff": 1e-4,
             "use_sparsity": True, "sparsity": 0.9, "sparsity_method": "layerwise_magnitude", "use_implicit": True,
             "cg_iters": 10, "cg_tol": 1e-3, "outer_update": "sgd"},
    # configs/trainer/T3.yaml (method_args, head settings under the project's names) and Lunar.yaml
    "T3": {"guidance_scale": 1.0, "base_temp": 1.0, "head_hidden_size": 100, "head_layers": 1, "head_activation": "id",
           "head_bias": False, "seed": 0},
    "LUNAR": {"layers": [7], "coeffs": [2.0], "direction_prompts": "idk", "clamp_layer": False},
}


@pytest.mark.parametrize("name", sorted(SPEC_DEFAULTS))
def test_defaults_match_spec(name):
    got = method_defaults(name)
    for key, value in SPEC_DEFAULTS[name].items():
        assert got[key] == value, (name, key)


def test_ga_has_no_hparams_and_baldro_defaults():
    assert method_defaults("GradAscent") == {}
    with pytest.raises(ConfigError, match="GradAscent accepts"):
        build_method("GradAscent", alpha=1.0)
    assert method_defaults("DrNPO")["beta_dv"] == 1.0 and method_defaults("DrNPO")["dv_mode"] == "softmin"
    assert method_defaults("GroupNPO")["group_ratio"] == 0.5
    assert method_defaults("DrWGA")["beta_dv"] == 2.0 and method_defaults("DrWGA")["form"] == "sequence"


@pytest.mark.parametrize("alias,base,kind", [(a, t.method, t.baldro) for a, t in METHOD_ALIASES.items()])
def test_aliases_build_the_right_method(alias, base, kind, tmp_path):
    kw = {"target_token_ids": [1]} if base == "JensUn" else {}
    if base == "LMCleaner":   # its training log is required
        from unlearning.methods.lmcleaner_log import LogRecorder
        kw = {"training_log": str(LogRecorder([{"input_ids": [1, 2], "labels": [1, 2]}], 0).write(tmp_path))}
    m = build_method(alias, **kw)
    wrapper = {None: None, "dv": BalDRODV, "g": BalDROG}[kind]
    if wrapper is None:
        assert m.name == base
    else:
        assert isinstance(m, wrapper) and m.base.name == base and m.hparams()["baldro"] == kind
    assert build_method(alias.lower(), **kw).name == m.name  # case-insensitive


def test_build_method_example_from_brief(model, batch):
    method = build_method("NPO", beta=0.1, baldro="dv", beta_dv=2.0)
    assert isinstance(method, BalDRODV) and method.config.beta_dv == 2.0 and method.base.config.beta == 0.1
    assert method.needs_ref_logps == ("forget",) and not method.needs_ref_model
    from unlearning.methods import attach_for_method, frozen_copy
    cached = attach_for_method(method, [batch], frozen_copy(model))[0]
    out = method.loss(model, cached, ref_model=None)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_build_method_errors():
    with pytest.raises(ConfigError, match="'NPO'.*'DrWGA'"):
        build_method("NOP")
    with pytest.raises(ConfigError, match=r"NPO accepts \['alpha', 'baldro', 'beta', 'gamma'"):
        build_method("NPO", beta1=3.0)
    with pytest.raises(ConfigError, match="add baldro='dv'"):
        build_method("NPO", beta_dv=2.0)
    with pytest.raises(ConfigError, match="add baldro='g'"):
        build_method("NPO", group_ratio=0.5)
    with pytest.raises(ConfigError, match="already means BalDRO-DV"):
        build_method("DrNPO", baldro="g")
    with pytest.raises(ConfigError, match="beta"):
        build_method("NPO", beta=-1.0)
    with pytest.raises(ConfigError, match="retain_loss_type"):
        build_method("NPO", retain_loss_type="EMBED_DIFF")
    with pytest.raises(ConfigError, match="form"):
        build_method("WGA", form="batch")


def test_reference_needs_are_declared():
    assert build_method("NPO").needs_ref_logps == ("forget",) and not build_method("NPO").needs_ref_model
    assert build_method("IdkDPO").needs_ref_logps == ("forget", "idk")
    assert build_method("TNPO").needs_ref_logps == ("forget",)
    assert build_method("GradDiff", retain_loss_type="KL").needs_ref_model
    assert not build_method("GradDiff").needs_ref_model
    assert build_method("UNDIAL").needs_ref_model and build_method("RMU").needs_ref_model
    assert not build_method("RMU", alpha=0.0).needs_ref_model
    assert build_method("SimNPO").needs_ref_logps == () and not build_method("SimNPO").needs_ref_model


def test_reference_config_names_of_sibl_rmu_t3_and_pdu():
    """open-unlearning's configs/trainer spellings: SIBL.yaml K and gamma (= the L1 coefficient there, the forget
    weight everywhere else), RMU.yaml module_regex, T3.yaml guidance_cfg, PDU.yaml dual_update_upon."""
    sibl = build_method("SIBL", K=3, gamma=2e-4, epsilon=0.2, T=7)
    assert (sibl.config.inner_steps, sibl.config.l1_coeff, sibl.config.retain_loss_eps) == (3, 2e-4, 0.2)
    assert sibl.config.outer_steps == 7 and build_method("SIBL", T=None).config.outer_steps is None
    assert build_method("NPO", gamma=0.5).config.gamma == 0.5
    assert build_method("RMU", module_regex=r"model\.layers\.3").config.layer == 3
    t3 = build_method("T3", guidance_cfg={"hidden_size": 8, "num_hidden_layers": 2, "activation_str": "relu",
                                          "bias": True}).config
    assert (t3.head_hidden_size, t3.head_layers, t3.head_activation, t3.head_bias) == (8, 2, "relu", True)
    # T3.yaml's method_args as written there (@ bceda2cd), every one of them accepted
    t3 = build_method("T3", pooling="mean", pool_temp=None, extraction_layer=-1, guidance_scale=1, base_temp=1,
                      guidance_cfg={"hidden_size": 100, "num_hidden_layers": 1, "activation_str": "id",
                                    "bias": False}).config
    assert (t3.pooling, t3.pool_temp, t3.extraction_layer, t3.head_hidden_size) == ("mean", None, -1, 100)
    pdu = build_method("PDU", dual_update_upon="epoch", dual_warmup_epochs=2).config
    assert (pdu.dual_update_upon, pdu.dual_warmup_epochs) == ("epoch", 2)
    from unlearning.train.fields import resolve
    assert resolve("K") == ("method", "hparams", "inner_steps")
    assert resolve("T") == ("method", "hparams", "outer_steps")
    assert resolve("module_regex") == ("method", "hparams", "module_regex")


@pytest.mark.parametrize("name,hp,field", [
    ("SIBL", {"T": 0}, "outer_steps"),                          # SIBL's outer-iteration count: >= 1 or null
    ("RMU", {"module_regex": r"model\.embed_tokens"}, "module_regex"),
    ("T3", {"guidance_cfg": {"hidden": 8}}, "guidance_cfg"),
    ("PDU", {"dual_update_upon": "batch"}, "dual_update_upon"),
    ("PDU", {"dual_warmup_epochs": -1}, "dual_warmup_epochs"),
    ("SIBL", {"gamma": 1e-4, "l1_coeff": 1e-4}, "l1_coeff"),
    ("T3", {"pooling": "attn"}, "pooling"),                     # the reference implements mean pooling only
    ("T3", {"extraction_layer": 3}, "extraction_layer"),        # its head training refuses layers but -1
    ("T3", {"poolng": "mean"}, "poolng"),                       # a typo: "did you mean 'pooling'?"
])
def test_reference_names_give_one_line_errors(name, hp, field):
    with pytest.raises(ConfigError) as err:
        build_method(name, **hp)
    msg = str(err.value)
    assert "\n" not in msg and f"'{field}'" in msg and "Fix:" in msg
    if field == "poolng":
        assert "did you mean 'pooling'?" in msg
