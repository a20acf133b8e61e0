"""The checks of a sweep spec that span its sections: objectives and constraints against the evaluator's metrics,
the evaluation settings, the models and their retain references. `sweeps.spec.SweepSpec` runs them once, when
it is validated; each raises a one-line `ConfigError` naming the spec field.

    check_data_source(spec)      # first: a typo in data.source must not surface as a missing retain model
    check_objectives(spec); check_eval(spec); check_model_refs(spec, 0, spec.models[0]); check_retain_reference(spec)
    check_model_paths(spec)      # with `load_spec(check_models=True)`: zoo names parse, local folders exist

What differs per benchmark (its data sources, settings, models and retain reference) is the benchmark's own check
(`unlearning.benchmarks`, looked up as `spec.benchmark`); these functions apply it and the checks every
benchmark shares.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from sweeps.spec.objectives import Objective
from unlearning.errors import ConfigError, UserError

RETAIN_METRICS = ("forget_quality", "privleak")  # computed against the retain model's statistics


def did_you_mean(name: str, allowed: Any) -> str:
    close = difflib.get_close_matches(str(name), list(allowed), n=1)
    return (f"did you mean '{close[0]}'? " if close else "") + f"use one of {sorted(allowed)}"


def addon_metrics(spec: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(eval.settings without the add-on benchmarks' blocks, the metrics those blocks report: WMDP's `lm_eval`,
    lm-evaluation-harness tasks). Errors name `eval.settings.<block>.<field>`."""
    from unlearning.benchmarks.registry import addon_metric_names

    return addon_metric_names(spec)


def check_data_source(spec: Any) -> None:
    """data.source is its benchmark's generated data (`tofu-mini` or `tofu-mini-<zoo size>`; muse-mini, lkf-mini
    likewise), `hub`, an existing local folder, or a hub dataset id (owner/name) (`Benchmark.check_source`).
    Checked before anything that depends on it: on an unknown source the retain model is not derived, and a bad
    size only failed in the trials, after Ray had started."""
    from unlearning.benchmarks.registry import minis

    spec.benchmark.check_source(spec, minis())


def check_objectives(spec: Any) -> None:
    """Default objectives (the benchmark's); names must be the evaluator's metrics (or gibberish_rate, or an
    add-on's, e.g. lm-eval's)."""
    allowed = (*spec.benchmark.metric_names(), *addon_metrics(spec)[1])
    if spec.objectives is None:
        spec.objectives = [Objective(**o) for o in spec.benchmark.objectives_for(spec.data)]
    if not spec.objectives:
        raise ConfigError("spec", field="objectives", value=[], fix="give at least one objective")
    seen: set[str] = set()
    for i, obj in enumerate(spec.objectives):
        if obj.name not in allowed:
            raise ConfigError("spec", field=f"objectives.{i}.name", value=obj.name,
                              fix=f"unknown metric; {did_you_mean(obj.name, allowed)}")
        if obj.name in seen:
            raise ConfigError("spec", field=f"objectives.{i}.name", value=obj.name, fix="this objective is listed twice")
        seen.add(obj.name)
    for where, conditions in (("constraints", spec.constraints), ("select.require", spec.select.require),
                              ("select.first", spec.select.first)):
        for i, con in enumerate(conditions):
            if con.metric not in allowed:
                raise ConfigError("spec", field=f"{where}.{i}.metric", value=con.metric,
                                  fix=f"unknown metric; {did_you_mean(con.metric, allowed)}")
            if con.relative_to == "retain" and not (spec.retain_derived or all(m.retain_model or m.retain_logs
                                                                                for m in spec.models)):
                raise ConfigError("spec", field=f"{where}.{i}.relative_to", value="retain",
                                  fix="give every model a retain_model (or retain_logs), or compare to target")


def check_eval(spec: Any) -> None:
    """eval.settings validate as the benchmark's settings and select what the objectives read."""
    settings, names = addon_metrics(spec)
    spec.benchmark.check_eval(spec, settings, skip=names)


def check_model_refs(spec: Any, i: int, m: Any) -> None:
    """`models.<i>` suits the benchmark; its retain reference is derived on a zoo mini (`Benchmark`)."""
    spec.benchmark.check_model_refs(spec, i, m)


def check_retain_reference(spec: Any) -> None:
    """forget_quality and privleak compare with the retain model: where the benchmark's data does not derive it (a
    zoo mini does), every model needs retain_model or retain_logs when an objective or constraint uses one of
    them. Without it they evaluate to null and the search optimises nothing, hours later."""
    if spec.retain_derived:
        return
    uses = [f"objective '{o.name}'" for o in spec.objectives or [] if o.name in RETAIN_METRICS]
    uses += [f"constraint '{c}'" for c in (*spec.constraints, *spec.select.require) if c.metric in RETAIN_METRICS]
    if not uses:
        return
    for i, m in enumerate(spec.models):
        if m.retain_model is None and m.retain_logs is None:
            raise ConfigError("spec", field=f"models.{i}.retain_model", value=None,
                              fix=f"the {uses[0]} compares {m.name} with the model trained without "
                                  f"{spec.data.forget_split}: give retain_model (that model) or retain_logs "
                                  "(its TOFU_EVAL.json), or drop the metric from objectives/constraints")


def _looks_local(name: str) -> bool:
    """A path (absolute, relative with ./ or ../, ~, or existing) rather than a hub id like org/model."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def check_model_paths(spec: Any, where: str = "sweep spec") -> None:
    """Zoo names must be valid (unprepared zoo models are trained by the driver before the sweep starts), local
    folders must exist (hub ids are left to the hub)."""
    from unlearning.models.zoo import parse_zoo_name

    for i, m in enumerate(spec.models):
        for key in ("name", "retain_model"):
            name = getattr(m, key)
            if name is None:
                continue
            try:
                zoo = parse_zoo_name(name)
            except UserError as exc:
                raise ConfigError(where, field=f"models.{i}.{key}", value=name, fix=exc.fix) from None
            if zoo is not None:
                continue  # a valid zoo name; the driver trains the model first if it is not prepared yet
            if _looks_local(name) and not (Path(name).expanduser() / "config.json").is_file():
                raise ConfigError(where, field=f"models.{i}.{key}", value=name,
                                  fix="no model folder (with config.json) there: fix the path, or give a hub id "
                                      "like org/model")
        if m.retain_logs is not None and not Path(m.retain_logs).expanduser().is_file():
            raise ConfigError(where, field=f"models.{i}.retain_logs", value=m.retain_logs,
                              fix="give an existing TOFU_EVAL.json of the retain model")
