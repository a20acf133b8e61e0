"""What a sweep will do, before it runs: its searches, trials and evaluation points, the searcher and the
scheduler, a trial's resources and how many trials run at once, and (with a probe) about how long it takes.

    unlearn-sweep plan sweeps/tofu-mini.yaml                  # validate, this overview, a measured estimate
    unlearn-sweep plan SPEC --address auto --no-probe         # a Ray cluster's resources, no probe

    from sweeps.overview import local_machine, sweep_overview, print_overview, probe_sweep, print_estimate
    overview = sweep_overview(spec, local_machine(spec))      # nothing started, nothing written
    print_overview(overview, console)
    print_estimate(overview, probe_sweep(spec), console)      # a few optimiser steps + one evaluation per model

`unlearn-sweep run` prints the same overview (no probe) as its first lines (`sweeps.service.run_sweep`).

Trials at once are what the sweep's Tuner will get (`sweeps.tuning.concurrency`) from the resources Ray will
have: locally the Ray that `sweeps.ray_cluster.init_ray` starts (this machine's CPUs, at least one trial's worth,
and its GPUs); with an address, `ray.cluster_resources()` of the running cluster (connected to as a plain
driver: nothing is scheduled on it). A trial that needs more than there is is named by its resource
(`preflight` / `Resources.check_fits`, the checks `run` makes).

The probe runs, for each model, the sweep's own code on a throw-away copy of the sweep (a temporary folder):
the driver's shared work (`sweeps.shared.prepare_shared`: retain reference, inputs, the target's evaluation),
then one trial (`trainables.worker_loop.unlearning_loop_per_worker`, the function a Tune trial runs) stopped
after a few optimiser steps and evaluated once. The estimate scales those measurements by the spec (steps per
epoch from the forget set, epochs, evaluation points, trials at once); it leaves out Ray's start-up and
per-epoch checkpoints, and it runs on this machine, which is not the cluster's nodes.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from unlearning.errors import ConfigError

PROBE_STEPS = 4  # optimiser steps the probe runs per model (fewer when a whole trial has fewer)
RESOURCE_FIELDS = {"cpus": "CPUs", "gpus": "GPUs", "resources.cpus": "CPUs", "resources.gpus": "GPUs"}


@dataclass
class Machine:
    """Where the trials will run: its CPUs and GPUs as Ray will count them, and what is short for one trial."""

    where: str  # "this machine" | "the Ray cluster at ADDRESS"
    cpus: float | None  # None: not known yet (a cluster before the driver connects)
    gpus: float | None
    short: ConfigError | None = None  # a trial needs more than there is (its field names the resource)
    ray_cpus: float | None = None  # CPUs the local Ray declares when not the machine's (sized to one trial)

    def total(self) -> dict[str, float]:
        return {"CPU": self.ray_cpus or self.cpus or 0.0, "GPU": self.gpus or 0.0}

    @property
    def known(self) -> bool:
        return self.cpus is not None


@dataclass
class SearchRow:
    search_id: str
    model: str
    label: str
    trials: int
    epochs: tuple[float, float]  # (fewest, most): a searched `epochs` spans its range
    mean_epochs: float
    every: float | None  # eval.every


@dataclass
class Overview:
    spec: Any
    machine: Machine
    rows: list[SearchRow]
    at_once: int  # trials at once (0: not even one fits, or not known yet)


@dataclass
class Probe:
    """One model's measurements (seconds)."""

    model: str
    setup_s: float  # the driver's shared work for the model (retain reference, inputs, target evaluation)
    run_s: float  # the probe trial from start to end
    step_s: float  # one optimiser step
    eval_s: float  # one evaluation point
    steps: int  # steps the probe ran
    forget_items: int  # examples per epoch


def _fit_error(spec: Any, address: str | None, total: dict[str, float]) -> ConfigError | None:
    """The machine-fit checks of `run`; a ConfigError naming the short resource, else None. Any other
    preflight error (storage, data, models) is raised: the spec cannot run as it is."""
    from sweeps.preflight import preflight

    try:
        preflight(spec, address)
        if address:
            spec.resources.check_fits(total)
    except ConfigError as exc:
        if exc.field in RESOURCE_FIELDS:
            return exc
        raise
    return None


def local_machine(spec: Any, checked: bool = False) -> Machine:
    """This machine as the local Ray of `run` will see it (see the module docstring); `checked`: preflight
    has passed already (`run`), else it is run here and a short resource is recorded."""
    from sweeps.preflight import cuda_devices, usable_cpus
    from sweeps.ray_cluster import local_ray_cpus

    return Machine("this machine", float(usable_cpus()), float(cuda_devices()), ray_cpus=float(local_ray_cpus(spec)),
                   short=None if checked else _fit_error(spec, None, {}))


def unconnected_cluster(address: str) -> Machine:
    """A cluster `run` has not connected to yet (its resources are read then)."""
    return Machine(f"the Ray cluster at {address}", None, None)


CONNECT_TIMEOUT_S = 10.0  # ray.init waits for a cluster that is not there (minutes): a TCP check first


def _check_reachable(address: str) -> None:
    """ConfigError when `address` names a host:port (ray://, plain) that does not accept a connection."""
    import socket
    from urllib.parse import urlparse

    if address in ("auto", "local"):
        return  # Ray finds the local cluster's address itself (and fails at once when there is none)
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if not parsed.hostname or not parsed.port:
        return
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError("--address", field=None, value=address,
                          fix=f"no Ray cluster answers there ({exc.strerror or exc}): start one (`ray start "
                              "--head`) or leave --address out to plan for this machine") from None


def cluster_machine(spec: Any, address: str) -> Machine:
    """The Ray cluster at `address`: its resources, read as a plain driver (no task, no actor, no trial)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from sweeps.ray_cluster import cluster_resources

    started = not ray.is_initialized()
    try:
        if started:
            _check_reachable(address)
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        total = cluster_resources()
    except ConfigError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError("--address", field=None, value=address,
                          fix=f"no Ray cluster answers there ({str(exc).splitlines()[0][:160]}): start one (`ray "
                              "start --head`) or leave --address out to plan for this machine") from None
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    return Machine(f"the Ray cluster at {address}", total["CPU"], total["GPU"],
                   short=_fit_error(spec, address, total))


def _epochs(plan: Any) -> tuple[tuple[float, float], float]:
    dim = plan.space.params.get("epochs")
    if dim is None:
        e = float(plan.base["train"]["epochs"])
        return (e, e), e
    ends = [float(v) for v in dim.bounds()]
    mean = statistics.fmean(ends) if dim.type == "categorical" else (ends[0] + ends[-1]) / 2
    return (min(ends), max(ends)), mean


def sweep_overview(spec: Any, machine: Machine) -> Overview:
    """The sweep's searches and how they will run on `machine` (pure: nothing started or written)."""
    from sweeps.tuning import concurrency

    plans = spec.searches()
    rows = []
    for plan in plans:
        span, mean = _epochs(plan)
        rows.append(SearchRow(plan.search_id, plan.model.name, plan.label, spec.budget.num_trials, span, mean,
                              plan.base["eval"].get("every")))
    at_once = 0 if machine.short is not None or not machine.known else concurrency(spec, machine.total(),
                                                                                    searches=len(plans))
    return Overview(spec, machine, rows, at_once)


def eval_count(epochs: float, every: float | None, steps_per_epoch: int | None = None) -> int:
    """Evaluation points of a trial of `epochs` epochs (the loop's own `eval_points`; without the steps per
    epoch, as if every fraction of an epoch were its own step)."""
    from unlearning.train.schedule import eval_points

    return len(eval_points(epochs, steps_per_epoch or 10**6, every))


def _num(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def _span(lo: float, hi: float) -> str:
    return _num(lo) if lo == hi else f"{_num(lo)}-{_num(hi)}"


def _evals(row: SearchRow, spe: int | None = None) -> tuple[int, int]:
    return eval_count(row.epochs[0], row.every, spe), eval_count(row.epochs[1], row.every, spe)


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
        lo, hi = _evals(r)
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
            _scheduler_line(spec), resources_line(spec), machine_line(ov), "budget: " + ", ".join(limits)]


def print_overview(ov: Overview, console: Console) -> None:
    for item in overview_lines(ov):
        if isinstance(item, str):
            console.print(item, highlight=False, markup=False)
        else:
            console.print(item)


# ------------------------------------------------------------------------------------------------------
# the probe


def _middle(dim: Any) -> Any:
    """A value in the middle of a dimension (geometric middle of a log range, the middle choice)."""
    ends = dim.bounds()
    if dim.type == "categorical":
        return ends[len(ends) // 2]
    lo, hi = ends
    mid = math.sqrt(lo * hi) if dim.log and lo > 0 else (lo + hi) / 2
    return int(round(mid)) if dim.type == "int" else mid


def _inputs_items(inputs_dir: str) -> int:
    """Forget examples of the run's inputs the shared work just stored (one file in a fresh folder)."""
    import torch

    files = sorted(Path(inputs_dir).glob("inputs-*.pt"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise ConfigError("plan", field="probe", value=inputs_dir, fix="the shared work wrote no inputs: run "
                          "`unlearn-sweep plan --no-probe` and report this")
    return len(torch.load(files[-1], map_location="cpu", weights_only=False)["forget"])


def probe_search(spec: Any, plan: Any, steps: int = PROBE_STEPS, log=lambda _m: None) -> Probe:
    """Measure one search's model on this machine (see the module docstring); nothing of the real sweep
    folder is read or written."""
    import json

    import torch

    from sweeps.shared import prepare_shared
    from sweeps.spec import parse_spec
    from trainables.trial import SWEEP_KEY, sweep_constants, worker_config
    from trainables.worker_loop import unlearning_loop_per_worker
    from unlearning.train.data import micro_batches_per_epoch

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="unlearn-sweep-probe-") as tmp:
        scratch = parse_spec({**spec.raw(), "storage": tmp}, where=spec.source_path or spec.name,
                             source=spec.source_path)
        t0 = time.perf_counter()
        shared = prepare_shared(scratch, plan, log=log)
        setup_s = time.perf_counter() - t0
        n = _inputs_items(shared.inputs_dir)
        values = {name: _middle(dim) for name, dim in plan.space.params.items() if name != "epochs"}
        resources = spec.resources.model_dump()
        consts = sweep_constants(plan.base, search_id=plan.search_id, sweep_dir=str(scratch.sweep_dir()),
                                 reference=shared.reference_dir, inputs_cache=shared.inputs_dir,
                                 resources={**resources, "max_failures": 0},
                                 objective_names=[o.name for o in spec.objectives])
        worker = worker_config({SWEEP_KEY: consts, **values}, "probe")
        cfg = worker["train"]
        per_epoch = math.ceil(micro_batches_per_epoch(n, cfg["train"]["batch_size"]) / cfg["train"]["grad_accum"])
        ran = max(1, min(steps, int(per_epoch * cfg["train"]["epochs"])))
        cfg["train"]["stop_after_epoch"] = ran / per_epoch  # `ran` steps, then the one evaluation point
        cfg["eval"]["every"] = None
        t0 = time.perf_counter()
        try:
            unlearning_loop_per_worker({**worker, "report_to": "none"})
        finally:
            torch.set_num_threads(threads)
        run_s = time.perf_counter() - t0
        history_file = Path(cfg["output_dir"]) / "history.json"
        if not history_file.is_file():
            raise ConfigError("plan", field="probe", value=plan.search_id,
                              fix=f"the probe's trial of {plan.model.name} failed before its end (it would fail in "
                                  "the sweep too): run an exported config with `unlearn-sweep train` to see why, or "
                                  "plan with --no-probe")
        history = json.loads(history_file.read_text())
    times = [s["time_s"] for s in history["steps"]]
    deltas = [b - a for a, b in zip(times, times[1:])]
    step_s = statistics.median(deltas) if deltas else (times[0] if times else 0.0)
    evals = [e for e in history["evals"] if e.get("eval_seconds") is not None]
    eval_s = float(evals[-1]["eval_seconds"]) if evals else 0.0
    return Probe(plan.model.name, setup_s, run_s, step_s, eval_s, len(times), n)


def probe_sweep(spec: Any, log=lambda _m: None) -> dict[str, Probe]:
    """One probe per model (on its first search: the variants of a model train at the same speed)."""
    probes: dict[str, Probe] = {}
    for plan in spec.searches():
        if plan.model.name not in probes:
            log(f"probe: {plan.model.name} ({PROBE_STEPS} optimiser steps and one evaluation) ...")
            probes[plan.model.name] = probe_search(spec, plan, log=log)
    return probes


def probe_skip_reason(spec: Any) -> str | None:
    """Why a probe on this machine would not measure the trials' device, else None."""
    from sweeps.preflight import cuda_devices

    gpus = cuda_devices()
    if spec.resources.gpus > 0 and gpus == 0:
        return "the trials run on GPUs and this machine has none to probe on"
    if spec.resources.gpus == 0 and gpus > 0:
        return ("the trials run on CPUs but the probe would train on this machine's GPU: run "
                "`CUDA_VISIBLE_DEVICES= unlearn-sweep plan ...` to probe the CPU")
    return None


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def estimate(ov: Overview, probes: dict[str, Probe]) -> dict[str, Any]:
    """The wall time the probes predict (seconds): per trial of each search, the trials' work, the set-up."""
    spec = ov.spec
    per_trial: dict[str, float] = {}
    work = 0.0
    for row in ov.rows:
        p = probes[row.model]
        plan = spec.plan(row.search_id)
        t = plan.base["train"]
        from unlearning.train.data import micro_batches_per_epoch

        spe = math.ceil(micro_batches_per_epoch(p.forget_items, t["batch_size"], spec.resources.workers)
                        / t["grad_accum"])
        lo, hi = _evals(row, spe)
        fixed = max(0.0, p.run_s - p.steps * p.step_s - p.eval_s)  # load, inputs, engine, final save
        per_trial[row.search_id] = fixed + row.mean_epochs * spe * p.step_s + (lo + hi) / 2 * p.eval_s
        work += row.trials * per_trial[row.search_id]
    trials = sum(r.trials for r in ov.rows)
    at_once = max(1, ov.at_once)
    setup = sum(p.setup_s for p in probes.values())
    wall = setup + math.ceil(trials / at_once) * (work / trials if trials else 0.0)
    return {"per_trial": per_trial, "work": work, "setup": setup, "wall": wall, "at_once": at_once}


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
