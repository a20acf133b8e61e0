"""Unlearning losses (docs/methods.md, docs/methods-fidelity.md), the BalDRO-G / BalDRO-DV wrappers and cached
reference log-probs.

    from unlearning.methods import build_method
    method = build_method("NPO", beta=0.1, baldro="dv", beta_dv=2.0)
    out = method.loss(model, batch, ref_model=None)      # LossOutput(loss, forget_loss, retain_loss, ...)
    out.loss.backward()

See registry.py for names, baldro.py for the wrappers, reference.py for the reference model.
"""

from unlearning.methods.baldro import BalDRODV, BalDROG, dv_reduce, dv_weights
from unlearning.methods.base import ForgetTerms, LossOutput, Method
from unlearning.methods.names import CANONICAL_METHODS, METHOD_ALIASES, canonicalize
from unlearning.methods.reference import attach_for_method, attach_ref_logps, compute_ref_logps, frozen_copy
from unlearning.methods.registry import METHODS, build_method, method_defaults

__all__ = [
    "BalDRODV", "BalDROG", "CANONICAL_METHODS", "ForgetTerms", "LossOutput", "METHODS", "METHOD_ALIASES",
    "Method", "attach_for_method", "attach_ref_logps", "build_method", "canonicalize", "compute_ref_logps",
    "dv_reduce", "dv_weights", "frozen_copy", "method_defaults",
]
