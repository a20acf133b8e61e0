"""The LKF parts of a sweep spec's cross-section checks (`sweeps.spec_checks` dispatches here on
`data.benchmark: lkf`): the evaluation settings are LkfEvalConfig's; there is no retain model.

    check_lkf_eval(spec); check_lkf_model_refs(spec, 0, spec.models[0])

LKF's facts are real lesser-known facts the model already knows, so any model can be unlearned; on lkf-mini (made
from tofu-mini's facts) that is a tofu-mini zoo model, whose target knows them. Forgetting is measured without a
retain model (forget_quality and privleak do not exist here): the forget facts' answers, their worst case over the
16 question variants and after the relearning attack (README "Robustness objectives and LKF sweeps").
"""

from __future__ import annotations

from typing import Any

from sweeps.spec_sections import check_selected_metrics
from unlearning.errors import ConfigError, UserError


def check_lkf_eval(spec: Any) -> None:
    """eval.settings validate as LKF settings and select every metric the objectives and conditions read."""
    from unlearning.evaluation.config import LkfEvalConfig

    settings = dict(spec.eval.settings)
    for key in ("retain_model", "retain_logs", "forget_split"):
        if key in settings:
            raise ConfigError("spec", field=f"eval.settings.{key}", value=settings[key],
                              fix="LKF is evaluated on forget_eval_para / retain_eval_para without a retain model: "
                                  "remove it")
    check_selected_metrics(spec, LkfEvalConfig, settings, "lkf")


def check_lkf_model_refs(spec: Any, i: int, m: Any) -> None:
    """No retain reference on LKF; on lkf-mini the model is a tofu-mini zoo model (its target knows the facts)."""
    from unlearning.models.zoo import parse_zoo_name

    for key in ("retain_model", "retain_logs"):
        if getattr(m, key) is not None:
            raise ConfigError("spec", field=f"models.{i}.{key}", value=getattr(m, key),
                              fix="LKF has no retain model (forgetting is measured on the answers): remove it")
    try:
        zoo = parse_zoo_name(m.name)
    except UserError as exc:
        raise ConfigError("spec", field=f"models.{i}.name", value=m.name, fix=exc.fix) from None
    if spec.data.source.startswith("lkf-mini") and (zoo is None or not m.name.startswith("tofu-mini")):
        raise ConfigError("spec", field=f"models.{i}.name", value=m.name,
                          fix="lkf-mini is made from tofu-mini's facts: unlearn a tofu-mini zoo model "
                              "(tofu-mini/target), or give data.source hub (nmndeep/LKF-*) or a folder")
