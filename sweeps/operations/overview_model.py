"""The plan's model: a sweep's searches and the machine its trials will run on, before anything runs (the data
behind `unlearn-sweep plan` and `run`'s first lines; printed by `sweeps.operations.overview`).

    from sweeps.operations.overview_model import local_machine, cluster_machine, sweep_overview
    machine = local_machine(spec)                        # or cluster_machine(spec, "auto"), unconnected_cluster(addr)
    ov = sweep_overview(spec, machine)                   # Overview: rows (one SearchRow per search), trials at once
    ov.at_once, ov.rows[0].epochs, eval_range(ov.rows[0])   # trials at once, (fewest, most) epochs, evaluations

Trials at once are what the sweep's Tuner will get (`sweeps.search.tuning.concurrency`) from the resources Ray
will have: locally the Ray that `sweeps.operations.ray_cluster.init_ray` starts, with an address the running
cluster's (connected to as a plain driver: nothing is scheduled on it). A trial that needs more than there is is recorded in
`Machine.short`, a ConfigError naming the resource. `sweeps.operations.overview` re-exports every public name here.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Any

from unlearning.errors import ConfigError

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


def _fit_error(spec: Any, address: str | None, total: dict[str, float]) -> ConfigError | None:
    """The machine-fit checks of `run`; a ConfigError naming the short resource, else None. Any other
    preflight error (storage, data, models) is raised: the spec cannot run as it is."""
    from sweeps.operations.preflight import preflight

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
    from sweeps.operations.preflight import cuda_devices, usable_cpus
    from sweeps.operations.ray_cluster import local_ray_cpus

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

    from sweeps.operations.ray_cluster import cluster_resources

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
    from sweeps.search.tuning import concurrency

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


def eval_range(row: SearchRow, spe: int | None = None) -> tuple[int, int]:
    """Evaluation points of the row's shortest and longest trial (`spe`: optimiser steps per epoch, when known)."""
    return eval_count(row.epochs[0], row.every, spe), eval_count(row.epochs[1], row.every, spe)
