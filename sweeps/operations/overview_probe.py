"""The plan's probe and estimate: measure each model of a sweep on this machine, then scale the measurements by
the spec into a wall-time estimate (`unlearn-sweep plan`; printed by `sweeps.operations.overview.print_estimate`).

    from sweeps.operations.overview_probe import probe_skip_reason, probe_sweep, estimate
    if probe_skip_reason(spec) is None:                      # the probe would measure the trials' device
        probes = probe_sweep(spec, log=print)                # {model: Probe}: a few optimiser steps + one evaluation
        estimate(sweep_overview(spec, machine), probes)      # {"per_trial", "work", "setup", "wall", "at_once"} (s)

The probe runs, for each model, the sweep's own code on a throw-away copy of the sweep (a temporary folder):
the driver's shared work (`sweeps.operations.shared.prepare_shared`: retain reference, inputs, the target's evaluation),
then one trial (`trainables.worker_loop.unlearning_loop_per_worker`, the function a Tune trial runs) stopped
after a few optimiser steps and evaluated once. The estimate scales those measurements by the spec (steps per
epoch from the forget set, epochs, evaluation points, trials at once); it leaves out Ray's start-up and
per-epoch checkpoints, and it runs on this machine, which is not the cluster's nodes. `sweeps.operations.overview`
re-exports every public name here.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.operations.overview_model import Overview, eval_range
from unlearning.errors import ConfigError

PROBE_STEPS = 4  # optimiser steps the probe runs per model (fewer when a whole trial has fewer)


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

    from sweeps.operations.shared import prepare_shared
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
    from sweeps.operations.preflight import cuda_devices

    gpus = cuda_devices()
    if spec.resources.gpus > 0 and gpus == 0:
        return "the trials run on GPUs and this machine has none to probe on"
    if spec.resources.gpus == 0 and gpus > 0:
        return ("the trials run on CPUs but the probe would train on this machine's GPU: run "
                "`CUDA_VISIBLE_DEVICES= unlearn-sweep plan ...` to probe the CPU")
    return None


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
        lo, hi = eval_range(row, spe)
        fixed = max(0.0, p.run_s - p.steps * p.step_s - p.eval_s)  # load, inputs, engine, final save
        per_trial[row.search_id] = fixed + row.mean_epochs * spe * p.step_s + (lo + hi) / 2 * p.eval_s
        work += row.trials * per_trial[row.search_id]
    trials = sum(r.trials for r in ov.rows)
    at_once = max(1, ov.at_once)
    setup = sum(p.setup_s for p in probes.values())
    wall = setup + math.ceil(trials / at_once) * (work / trials if trials else 0.0)
    return {"per_trial": per_trial, "work": work, "setup": setup, "wall": wall, "at_once": at_once}
