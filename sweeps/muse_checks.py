"""The MUSE parts of a sweep spec's cross-section checks (`sweeps.spec_checks` dispatches here on
`data.benchmark: muse`): the evaluation settings are MuseEvalConfig's, the models and their retain references.

    check_muse_eval(spec); check_muse_model_refs(spec, 0, spec.models[0])

On muse-mini the models are the muse-mini zoo's and the retain reference is derived (muse-mini/target ->
muse-mini/retain, evaluated once for privleak); on MUSE from the hub or a folder privleak needs `retain_model`
or `retain_logs` (a MUSE_EVAL.json), checked with TOFU's rule (`check_retain_reference`).
"""

from __future__ import annotations

from typing import Any

from sweeps.spec_sections import check_selected_metrics
from unlearning.errors import ConfigError, UserError


def check_muse_eval(spec: Any) -> None:
    """eval.settings validate as MUSE settings and select every metric the objectives and conditions read."""
    from unlearning.evaluation.config import MuseEvalConfig

    settings = dict(spec.eval.settings)
    for key in ("retain_model", "retain_logs"):
        if key in settings:
            raise ConfigError("spec", field=f"eval.settings.{key}", value=settings[key],
                              fix=f"give the retain reference per model: models: [{{name: ..., {key}: ...}}]")
    check_selected_metrics(spec, MuseEvalConfig, settings, "muse")


def check_muse_model_refs(spec: Any, i: int, m: Any) -> None:
    """muse-mini is unlearned from muse-mini zoo models (retain model derived); names must parse."""
    from unlearning.models.zoo import parse_zoo_name

    try:
        zoo = parse_zoo_name(m.name)
    except UserError as exc:
        raise ConfigError("spec", field=f"models.{i}.name", value=m.name, fix=exc.fix) from None
    if spec.is_muse_mini:
        if zoo is None or zoo[1] != "target" or not m.name.startswith("muse-mini"):
            raise ConfigError("spec", field=f"models.{i}.name", value=m.name,
                              fix="muse-mini is unlearned from its zoo's target (muse-mini/target); give "
                                  "data.source hub (or a folder) for other models")
        if m.retain_model is None and m.retain_logs is None:
            m.retain_model = f"{m.name.split('/', 1)[0]}/retain"
    if m.retain_model is not None and m.retain_logs is not None:
        raise ConfigError("spec", field=f"models.{i}.retain_logs", value=m.retain_logs,
                          fix="give either retain_model or retain_logs (its stored MUSE_EVAL.json), not both")
    if m.retain_model is not None:
        try:
            rz = parse_zoo_name(m.retain_model)
        except UserError as exc:
            raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model, fix=exc.fix) from None
        if rz is not None and (rz[1] != "retain" or not m.retain_model.startswith("muse-mini")):
            raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model,
                              fix=f"the model trained without raw/forget: {m.name.split('/')[0]}/retain")
