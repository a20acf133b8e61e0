"""Registry of unlearning methods and ``build_method``, the one constructor the training loop calls.

    from unlearning.methods import build_method
    method = build_method("NPO", beta=0.1, baldro="dv", beta_dv=2.0)     # NPO wrapped in BalDRO-DV
    method = build_method("GroupNPO", sampling_ratio=0.5, generator=g)  # alias -> NPO + BalDRO-G
    method.needs_ref_logps, method.needs_ref_model                      # what the loop must prepare
    out = method.loss(model, batch, ref_model=None); out.loss.backward()

Unknown method names and hyperparameters raise ConfigError listing the valid ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from unlearning.errors import ConfigError
from unlearning.methods.base import Method
from unlearning.methods.baldro import BalDRODV, BalDRODVConfig, BalDROG, BalDROGConfig
from unlearning.methods.ceu import CEU
from unlearning.methods.grad_ascent import GradAscent
from unlearning.methods.grad_diff import GradDiff
from unlearning.methods.gru import GRU
from unlearning.methods.idk_dpo import IdkDPO
from unlearning.methods.jensun import JensUn
from unlearning.methods.lmcleaner import LMCleaner
from unlearning.methods.lunar import LUNAR
from unlearning.methods.names import canonicalize, resolve_method_name
from unlearning.methods.npo import NPO
from unlearning.methods.pdu import PDU
from unlearning.methods.rmu import RMU
from unlearning.methods.satimp import SatImp
from unlearning.methods.sibl import SIBL
from unlearning.methods.simnpo import SimNPO
from unlearning.methods.t3 import T3
from unlearning.methods.tnpo import TNPO
from unlearning.methods.undial import UNDIAL
from unlearning.methods.wga import WGA

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (
    GradAscent, GradDiff, IdkDPO, NPO, SimNPO, RMU, SatImp, WGA, TNPO, UNDIAL, JensUn, CEU, PDU, GRU, SIBL, T3, LUNAR,
    LMCleaner)}
WRAPPER_CONFIGS = {"g": BalDROGConfig, "dv": BalDRODVConfig}


def _field_names(config_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def method_defaults(name: str) -> dict[str, Any]:
    """Default hyperparameters of a method name (alias defaults and wrapper defaults included)."""
    alias = resolve_method_name(name)
    out = dataclasses.asdict(METHODS[alias.method].config_cls())
    if alias.baldro:
        out.update({"baldro": alias.baldro, **dataclasses.asdict(WRAPPER_CONFIGS[alias.baldro]())})
    out.update(alias.defaults)
    return out


def build_method(name: str, *, generator: torch.Generator | None = None, **hparams: Any):
    """Build a method (wrapped in BalDRO-G/-DV when ``baldro=`` is given or the alias implies it).

    ``generator`` seeds BalDRO-G's retain subsampling (ignored by other methods)."""
    alias = resolve_method_name(name)
    hp = canonicalize(hparams, alias.method)
    baldro = hp.pop("baldro", None)
    if alias.baldro and baldro not in (None, alias.baldro):
        raise ConfigError("method", field="baldro", value=baldro,
                          fix=f"'{name}' already means BalDRO-{alias.baldro.upper()}; drop baldro or use "
                              f"the base method '{alias.method}'")
    baldro = baldro or alias.baldro
    hp = {**alias.defaults, **hp}
    cls = METHODS[alias.method]
    base_fields = _field_names(cls.config_cls)
    wrap_fields = _field_names(WRAPPER_CONFIGS[baldro]) if baldro else []
    for key, value in hp.items():
        if key in base_fields or key in wrap_fields:
            continue
        other = [k for k, c in WRAPPER_CONFIGS.items() if key in _field_names(c)]
        fix = (f"'{key}' belongs to BalDRO-{other[0].upper()}: add baldro='{other[0]}'" if other else
               f"{name} accepts {sorted(base_fields + wrap_fields + ['baldro'])}")
        raise ConfigError(name, field=key, value=value, fix=fix)
    method = cls(cls.config_cls(**{k: v for k, v in hp.items() if k in base_fields}))
    if baldro and not method.wrappable:
        raise ConfigError(name, field="baldro", value=baldro,
                          fix=f"BalDRO wrappers cannot wrap {cls.name} with these settings (see its docstring); "
                              "drop baldro")
    wrap_hp = {k: v for k, v in hp.items() if k in wrap_fields}
    if baldro == "dv":
        return BalDRODV(method, **wrap_hp)
    if baldro == "g":
        return BalDROG(method, generator=generator, **wrap_hp)
    return method
