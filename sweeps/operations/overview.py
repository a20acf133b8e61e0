"""What a sweep will do, before it runs: its searches, trials and evaluation points, the searcher and the
scheduler, a trial's resources and how many trials run at once, and (with a probe) about how long it takes.

    unlearn-sweep plan presets/tofu-mini.yaml                 # validate, this overview, a measured estimate
    unlearn-sweep plan SPEC --address auto --no-probe         # a Ray cluster's resources, no probe

    from sweeps.operations.overview import local_machine, sweep_overview, print_overview, probe_sweep, print_estimate
    overview = sweep_overview(spec, local_machine(spec))      # nothing started, nothing written
    print_overview(overview, console)
    print_estimate(overview, probe_sweep(spec), console)      # a few optimiser steps + one evaluation per model

`unlearn-sweep run` prints the same overview (no probe) as its first lines (`sweeps.operations.service.run_sweep`).

Trials at once are what the sweep's Tuner will get (`sweeps.search.tuning.concurrency`) from the resources Ray
will have: locally the Ray that `sweeps.operations.ray_cluster.init_ray` starts (this machine's CPUs, at least one
trial's worth, and its GPUs); with an address, `ray.cluster_resources()` of the running cluster (connected to as a plain
driver: nothing is scheduled on it). A trial that needs more than there is is named by its resource
(`preflight` / `Resources.check_fits`, the checks `run` makes).

Three modules: the plan's model (`sweeps.operations.overview_model`: the searches, the machine, trials at
once), the probe and estimate (`sweeps.operations.overview_probe`), and this one, which prints them; every public
name of the other two is importable from here. The probe runs the sweep's own code for a few optimiser steps and one evaluation per model on
a throw-away copy of the sweep; the estimate leaves out Ray's start-up and per-epoch checkpoints, and it runs on
this machine, which is not the cluster's nodes.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

# the plan's model and its probe (re-exported: `from sweeps.operations.overview import sweep_overview, ...`)
from sweeps.operations.overview_model import (  # noqa: F401
    CONNECT_TIMEOUT_S, RESOURCE_FIELDS, Machine, Overview, SearchRow, cluster_machine, eval_count, eval_range,
    local_machine, sweep_overview, unconnected_cluster,
)
from sweeps.operations.overview_probe import PROBE_STEPS, Probe, estimate, probe_search, probe_skip_reason, probe_sweep  # noqa: F401


def _num(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def _span(lo: float, hi: float) -> str:
    return _num(lo) if lo == hi else f"{_num(lo)}-{_num(hi)}"


def _plural(n: float, word: str) -> str:
    return f"{_num(n)} {word}" + ("" if n == 1 else "es" if word == "search" else "s")


def searches_table(ov: Overview) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for name, justify in (("model", "left"), ("method", "left"), ("trials", "right"), ("epochs", "right"),
                          ("trial-epochs", "right"), ("evaluations/trial", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    total_te = total_ev = 0.0
    for r in ov.rows:
        te = r.trials * r.mean_epochs
        lo, hi = eval_range(r)
        total_te += te
        total_ev += r.trials * (lo + hi) / 2
        table.add_row(r.model, r.label, str(r.trials), _span(*r.epochs),
                      ("~" if r.epochs[0] != r.epochs[1] else "") + _num(te), _span(lo, hi))
    exact = all(r.epochs[0] == r.epochs[1] for r in ov.rows)
    table.add_row(f"total: {_plural(len(ov.rows), 'search')}", "", str(sum(r.trials for r in ov.rows)), "",
                  ("" if exact else "~") + _num(total_te), ("" if exact else "~") + _num(total_ev) + " in all",
                  style="bold")
    return table


def _searcher_line(spec: Any) -> str:
    s = spec.search
    name = ("trajectory model (every evaluation point)" if s.sampler == "trajectory" else f"Optuna {s.sampler}")
    text = f"searcher: {name} (seed {spec.seed}), one study per search"
    if len(spec.searches()) > 1:
        text += ("; the searches share the trial slots at once" if s.concurrent else
                 "; the searches run one after the other (search.concurrent: false)")
    if s.warm_start:
        text += f"; warm start from {', '.join(s.warm_start)}"
    return text


def _scheduler_line(spec: Any) -> str:
    s = spec.search
    if s.scheduler == "moasha":
        return (f"scheduler: MO-ASHA (grace {_num(s.grace)} epochs, reduction factor {_num(s.reduction_factor)}): "
                "trials behind on the Pareto ranking stop early, so the epochs above are a maximum")
    return "scheduler: none (every trial runs all its epochs)"


def resources_line(spec: Any) -> str:
    from trainables.trial import uses_ray_train

    r = spec.resources
    per = spec.resources.per_trial()
    parts = [_plural(per["cpus"], "CPU")] + ([_plural(per["gpus"], "GPU")] if per["gpus"] else [])
    how = (f"{r.workers} Ray Train workers x ({_plural(r.cpus, 'CPU')}" + (f", {_plural(r.gpus, 'GPU')}" if r.gpus
                                                                          else "") + ")"
           if r.workers > 1 else "Ray Train, 1 worker" if uses_ray_train(r.model_dump()) else
           "in the Tune trial itself, no Ray Train")
    return f"resources per trial: {' + '.join(parts)} ({how})"


def machine_line(ov: Overview) -> str:
    m, spec = ov.machine, ov.spec
    if not m.known:
        return f"{m.where}: its CPUs and GPUs, and so the trials at once, are read when the driver connects"
    has = f"{m.where}: {_plural(m.cpus, 'CPU')}, {_plural(m.gpus, 'GPU')}"
    if m.ray_cpus is not None and m.ray_cpus != m.cpus and m.short is None:
        has += f" (Ray declares {_plural(m.ray_cpus, 'CPU')})"
    if m.short is not None:
        return f"{has}: not enough {RESOURCE_FIELDS[m.short.field]} for one trial"
    cap = f" (budget.max_concurrent {spec.budget.max_concurrent})" if spec.budget.max_concurrent else ""
    return f"{has}: {_plural(ov.at_once, 'trial')} at once{cap}"


def overview_lines(ov: Overview) -> list[Any]:
    """What `print_overview` prints, in order (strings and the searches table)."""
    spec = ov.spec
    head = f"sweep {spec.name}" + (f": {spec.description}" if spec.description else "")
    objectives = ", ".join(f"{o.name} {'↑' if o.mode == 'max' else '↓'}" + (" (log)" if o.scale == "log" else "")
                           for o in spec.objectives)
    if spec.constraints:
        objectives += f"; {_plural(len(spec.constraints), 'constraint')}: " + "; ".join(map(str, spec.constraints))
    every = {r.every for r in ov.rows}
    when = ("evaluations: at the end of each trial only" if every == {None} else
            "evaluations: every " + ", ".join(_plural(e, "epoch") for e in sorted(e for e in every if e)) +
            " and at each trial's end (epoch 0, the target, once per model)")
    budget = spec.budget
    limits = [f"stops after {budget.time_budget_s:g} s (budget.time_budget_s)"] if budget.time_budget_s else []
    limits.append(f"a failed trial is retried up to {_plural(budget.max_failures, 'time')}"
                  if budget.max_failures else "failed trials are not retried")
    return [head, searches_table(ov), when, "objectives: " + objectives, _searcher_line(spec),
            _scheduler_line(spec), resources_line(spec), machine_line(ov), "budget: " + ", ".join(limits),
            *recipe_lines(spec)]


def recipe_lines(spec: Any) -> list[str]:
    """One line per `fixed:` value that replaces the search-space preset's pinned reference recipe."""
    raw = spec.search_space
    name = raw if isinstance(raw, str) else "the method's default search space" if raw is None else "the search space"
    return [f"note: fixed.{key} {ours!r} replaces the reference recipe's {theirs!r} ({name}); remove it to run "
            "the recipe" for key, (ours, theirs) in spec.recipe_overrides.items()]


def print_overview(ov: Overview, console: Console) -> None:
    for item in overview_lines(ov):
        if isinstance(item, str):
            console.print(item, highlight=False, markup=False)
        else:
            console.print(item)


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def print_estimate(ov: Overview, probes: dict[str, Probe], console: Console) -> dict[str, Any]:
    """The probe's measurements and the estimate they give, labelled as an estimate."""
    est = estimate(ov, probes)
    say = lambda text: console.print(text, highlight=False, markup=False)  # noqa: E731
    say("probe (measured now on this machine, one short trial per model):")
    for p in probes.values():
        say(f"  {p.model}: {p.step_s:.2f} s per optimiser step ({p.forget_items} forget examples), "
            f"{p.eval_s:.1f} s per evaluation, {max(0.0, p.run_s - p.steps * p.step_s - p.eval_s):.1f} s trial "
            f"start-up and save, {p.setup_s:.1f} s shared set-up")
    for row in ov.rows:
        say(f"  {row.label} on {row.model}: ~{_duration(est['per_trial'][row.search_id])} per trial")
    trials = sum(r.trials for r in ov.rows)
    text = (f"estimate: ~{_duration(est['wall'])} wall ({trials} trials, {est['at_once']} at once, "
            f"~{_duration(est['work'])} of trial work, {_duration(est['setup'])} shared set-up; without Ray's "
            "start-up)")
    say(text)
    budget = ov.spec.budget.time_budget_s
    if budget and est["wall"] > budget:
        say(f"  budget.time_budget_s ({budget:g} s) stops the sweep before that: trials not started by then "
            "do not run")
    if ov.spec.search.scheduler == "moasha":
        say("  an upper bound: MO-ASHA stops some trials early")
    return est
