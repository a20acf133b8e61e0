"""The checks of a sweep spec that span its sections: objectives and constraints against the evaluator's metrics,
the evaluation settings, the models and their retain references. `sweeps.spec.SweepSpec` runs them once, when
it is validated; each raises a one-line `ConfigError` naming the spec field.

    check_data_source(spec)      # first: a typo in data.source must not surface as a missing retain model
    check_objectives(spec); check_eval(spec); check_model_refs(spec, 0, spec.models[0]); check_retain_reference(spec)
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from sweeps.lkf_checks import check_lkf_eval, check_lkf_model_refs
from sweeps.muse_checks import check_muse_eval, check_muse_model_refs
from sweeps.objectives import Objective
from sweeps.spec_sections import DEFAULT_OBJECTIVES, check_selected_metrics, metric_names
from unlearning.errors import ConfigError, UserError

RETAIN_METRICS = ("forget_quality", "privleak")  # computed against the retain model's statistics
MINI_SOURCES = {"tofu": "tofu-mini", "muse": "muse-mini", "lkf": "lkf-mini"}  # each benchmark's generated data


def did_you_mean(name: str, allowed: Any) -> str:
    close = difflib.get_close_matches(str(name), list(allowed), n=1)
    return (f"did you mean '{close[0]}'? " if close else "") + f"use one of {sorted(allowed)}"


def lm_eval_metrics(spec: Any) -> tuple[str, ...]:
    """The metrics of `eval.settings.lm_eval` (lm-evaluation-harness tasks, `wmdp_eval.py`); () without it."""
    from unlearning.evaluation.wmdp_eval import metric_names as lm_eval_names, split_settings, uses_wmdp_mini

    try:
        _, cfg = split_settings(spec.eval.settings, where="spec")
        if cfg is None:
            return ()
        if uses_wmdp_mini(cfg) and not spec.is_tofu_mini:
            raise ConfigError("spec", field="lm_eval.tasks", value=cfg.tasks,
                              fix="wmdp-mini is derived from tofu-mini: use data.source tofu-mini, or name other "
                                  "tasks (wmdp_bio, wmdp_cyber, mmlu)")
        if cfg.include_path or cfg.data_files:  # absolute: trials run in other working directories
            spec.eval.settings["lm_eval"] = cfg.model_dump(exclude_defaults=True)
        return lm_eval_names(cfg, where="spec")
    except UserError as exc:
        raise ConfigError("spec", field=f"eval.settings.{exc.field}", value=exc.value, fix=exc.fix) from None


def check_data_source(spec: Any) -> None:
    """data.source is its benchmark's generated data (`tofu-mini` or `tofu-mini-<zoo size>`; muse-mini, lkf-mini
    likewise), `hub`, an existing local folder, or a hub dataset id (owner/name). Checked before anything that
    depends on it: on an unknown source the retain model is not derived, and a bad size only failed in the
    trials, after Ray had started."""
    from unlearning.models.zoo import SIZES

    d = spec.data
    src, mini = str(d.source), MINI_SOURCES[d.benchmark]
    names = [mini, *(f"{mini}-{s}" for s in SIZES), "hub"]
    usage = (f"give {mini} (the zoo's generated data), {mini}-<size> ({', '.join(sorted(SIZES))}), hub, a folder "
             "of <split>.jsonl files, or a hub dataset id (owner/name)")

    def fail(fix: str) -> None:
        raise ConfigError("spec", field="data.source", value=src, fix=fix)

    if src == "hub" or src == mini:
        return
    if src.startswith(f"{mini}-"):
        if src[len(mini) + 1:] not in SIZES:
            close = difflib.get_close_matches(src, names[1:-1], n=1)
            fail((f"did you mean '{close[0]}'? " if close else "") + f"{mini} sizes are {sorted(SIZES)} "
                 f"(e.g. {mini}-tiny); {mini} alone takes the size of the model's zoo")
        return
    other = next((b for b, m in MINI_SOURCES.items() if m != mini and (src == m or src.startswith(f"{m}-"))), None)
    if other is not None:
        fail(f"{MINI_SOURCES[other]} is the {other} benchmark's data: set data.benchmark: {other}, or use {mini}")
    from unlearning.data.io import _HUB_ID

    path = Path(src).expanduser()
    if path.is_dir():
        return
    if path.exists():
        fail(f"{src} is a file: give the folder that holds the <split>.jsonl files")
    if _HUB_ID.match(src) and not src.startswith((".", "~")):
        return  # a hub dataset id (offline, `sweeps.preflight` requires it cached)
    close = difflib.get_close_matches(src, names, n=1, cutoff=0.7)
    fail(("did you mean '" + close[0] + "'? " if close else "no such folder; ") + usage)


def check_objectives(spec: Any) -> None:
    """Default objectives; names must be the evaluator's metrics (or gibberish_rate, or lm-eval's)."""
    allowed = (*metric_names(spec.benchmark_name), *lm_eval_metrics(spec))
    if spec.objectives is None:
        family = spec.data.benchmark if spec.data.benchmark in ("muse", "lkf") else "tofu"
        spec.objectives = [Objective(**o) for o in DEFAULT_OBJECTIVES[family]]
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
            if con.relative_to == "retain" and not all(m.retain_model or m.retain_logs or spec.is_tofu_mini
                                                        or spec.is_muse_mini for m in spec.models):
                raise ConfigError("spec", field=f"{where}.{i}.relative_to", value="retain",
                                  fix="give every model a retain_model (or retain_logs), or compare to target")


def check_eval(spec: Any) -> None:
    from unlearning.evaluation.config import EvalConfig

    if spec.data.benchmark == "muse":
        return check_muse_eval(spec)
    if spec.data.benchmark == "lkf":
        return check_lkf_eval(spec)

    settings = {k: v for k, v in spec.eval.settings.items() if k != "lm_eval"}  # checked by lm_eval_metrics
    if "forget_split" in settings and settings["forget_split"] != spec.data.forget_split:
        raise ConfigError("spec", field="eval.settings.forget_split", value=settings["forget_split"],
                          fix=f"the evaluator uses data.forget_split ({spec.data.forget_split}): remove it")
    settings["forget_split"] = spec.data.forget_split
    for key in ("retain_model", "retain_logs"):
        if key in settings:
            raise ConfigError("spec", field=f"eval.settings.{key}", value=settings[key],
                              fix=f"give the retain reference per model: models: [{{name: ..., {key}: ...}}]")
    check_selected_metrics(spec, EvalConfig, settings, "tofu", skip=lm_eval_metrics(spec))

def check_model_refs(spec: Any, i: int, m: Any) -> None:
    from unlearning.models.zoo import parse_zoo_name

    if spec.data.benchmark == "muse":
        return check_muse_model_refs(spec, i, m)
    if spec.data.benchmark == "lkf":
        return check_lkf_model_refs(spec, i, m)
    try:
        zoo = parse_zoo_name(m.name)
    except UserError as exc:
        raise ConfigError("spec", field=f"models.{i}.name", value=m.name, fix=exc.fix) from None
    pct = int(spec.data.forget_split[-2:])
    if spec.is_tofu_mini:
        if zoo is None:
            raise ConfigError("spec", field=f"models.{i}.name", value=m.name,
                              fix="tofu-mini is unlearned from zoo models (tofu-mini/target); give data.source "
                                  "hub (or a folder) for other models")
        if m.retain_model is None and m.retain_logs is None:
            m.retain_model = f"{m.name.split('/', 1)[0]}/retain{100 - pct:02d}"
    if m.retain_model is not None and m.retain_logs is not None:
        raise ConfigError("spec", field=f"models.{i}.retain_logs", value=m.retain_logs,
                          fix="give either retain_model or retain_logs (the reference's stored evaluation), "
                              "not both")
    if m.retain_model is not None:
        try:
            rz = parse_zoo_name(m.retain_model)
        except UserError as exc:
            raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model, fix=exc.fix) from None
        if rz is not None and rz[1] != f"retain{100 - pct:02d}":
            raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model,
                              fix=f"{spec.data.forget_split} needs the model trained without it: "
                                  f"{m.retain_model.split('/')[0]}/retain{100 - pct:02d}")

def check_retain_reference(spec: Any) -> None:
    """forget_quality and privleak compare with the retain model: on real TOFU (tofu-mini derives it from
    the zoo) every model needs retain_model or retain_logs when an objective or constraint uses one of them.
    Without it they evaluate to null and the search optimises nothing, hours later."""
    if spec.is_tofu_mini or spec.is_muse_mini:
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
