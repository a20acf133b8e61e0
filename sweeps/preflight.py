"""Checks of a validated spec against the machine it is about to run on, before anything is started or written.

    from sweeps.preflight import preflight
    preflight(spec, address=None)        # local run: CPUs, GPUs, writable folders; ConfigError (one line) if not

`sweeps.service.run_sweep` calls it first, so a sweep that cannot run here fails before Ray starts, before zoo
models are trained and before the sweep folder (or its spec.yaml) is written. A local Ray is sized to the
spec (`init_ray`), so the post-connect `Resources.check_fits` can never fail locally: the CPU and GPU checks
are done here against what this process may use. On a cluster (`address` given) the nodes' resources are
only known after connecting, which the post-connect check covers; what can be checked without starting
anything (the storage folder when it is local) is still checked here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from unlearning.errors import ConfigError


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity: a container or `taskset` limit), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cuda_devices() -> int:
    """CUDA devices torch sees (0 on a CPU-only host or a CPU build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install counts as no GPU
        return 0


def _writable_folder(path: Path, where: str, field: str, what: str) -> None:
    """`path` is (or can be created as) a folder this process can write: the nearest existing part must be a
    writable folder. Nothing is created."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if p != path and not p.is_dir():
        raise ConfigError(where, field=field, value=str(path),
                          fix=f"{p} is a file, so {what} cannot be created there: give another folder")
    if p == path and not p.is_dir():
        raise ConfigError(where, field=field, value=str(path), fix=f"{p} is a file, not a folder: give a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(where, field=field, value=str(path),
                          fix=f"{p} is not writable by this user: give a folder you can write ({what})")


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme.split("+")[0].lower() != "sqlite" or ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1]
    return Path(path) if path.startswith("/") else None


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_benchmark(spec: Any, where: str) -> None:
    """A local TOFU source must hold the forget split (a MUSE one `raw/<forget split>`)."""
    d = spec.data
    if spec.is_tofu_mini or spec.is_muse_mini or d.source == "hub" or spec.benchmark_name == "lkf-mini":
        return
    from unlearning.data.io import find_split_file, resolve_source
    from unlearning.errors import DataError

    try:
        src = resolve_source(d.source)
        if isinstance(src, Path):
            muse = d.benchmark == "muse"
            find_split_file(src, f"raw/{d.forget_split}" if muse else d.forget_split,
                            "MUSE raw split" if muse else "LKF split" if d.benchmark == "lkf" else "TOFU split")
    except DataError as exc:
        raise ConfigError(where, field="data.source", value=d.source, fix=exc.fix) from None


def _hub_model_missing(name: str) -> bool:
    """True when `name` is a hub id that offline mode cannot load (not in the local Hugging Face cache)."""
    from sweeps.spec import _looks_local
    from unlearning.models.zoo import parse_zoo_name

    if parse_zoo_name(name) is not None or _looks_local(name) or not _offline():
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return not isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - an odd id or cache layout: leave it to the loader
        return False


def _check_models_loadable(spec: Any, where: str) -> None:
    for i, m in enumerate(spec.models):
        for key in ("name", "retain_model"):
            name = getattr(m, key)
            if name is not None and _hub_model_missing(name):
                raise ConfigError(where, field=f"models.{i}.{key}", value=name,
                                  fix="offline mode is on (HF_HUB_OFFLINE=1) and this hub model is not in the "
                                      "local cache: download it first (HF_HUB_OFFLINE=0 huggingface-cli download "
                                      f"{name}) or give a local folder")


def preflight(spec: Any, address: str | None = None) -> None:
    """ConfigError (one line, naming the spec field) when `spec` cannot run here; creates and starts nothing."""
    where = spec.source_path or spec.name
    res = spec.resources
    _check_benchmark(spec, where)
    sweep_dir = Path(spec.storage).expanduser() / spec.name
    _writable_folder(sweep_dir, where, "storage", f"the sweep folder {sweep_dir}")
    if spec.tracking.uri:  # the default sqlite lives in the sweep folder, checked above
        db = _sqlite_path(spec.tracking.uri)
        if db is not None:
            _writable_folder(db.parent, where, "tracking.uri", "the MLflow database's folder")
    if spec.search.storage:
        db = _sqlite_path(spec.search.storage)
        if db is not None:
            _writable_folder(db.parent, where, "search.storage", "the Optuna database's folder")
    if address:
        return  # the cluster's CPUs and GPUs are known once connected: Resources.check_fits after ray.init
    _check_models_loadable(spec, where)  # this machine's cache only matters for a local run
    cores = usable_cpus()
    need_cpus = res.cpus * res.workers
    if need_cpus > cores + 1e-9:
        # local Ray is sized to the request, so nothing else stops a trial from oversubscribing the machine
        raise ConfigError(where, field="resources.cpus", value=res.cpus,
                          fix=f"a trial needs {need_cpus:g} CPUs ({res.workers} workers x {res.cpus:g}) but this "
                              f"machine has {cores}: lower resources.cpus or workers to fit, or run on a cluster "
                              "(--address)")
    if res.gpus > 0:
        gpus = cuda_devices()
        need_gpus = res.gpus * res.workers
        if gpus == 0:
            raise ConfigError(where, field="resources.gpus", value=res.gpus,
                              fix="torch sees no CUDA device on this machine: set resources.gpus: 0 to train on "
                                  "CPU, or run on a GPU host or cluster (--address)")
        if need_gpus > gpus + 1e-9:
            raise ConfigError(where, field="resources.gpus", value=res.gpus,
                              fix=f"a trial needs {need_gpus:g} GPUs ({res.workers} workers x {res.gpus:g}) but "
                                  f"this machine has {gpus}: lower resources.gpus or workers")


__all__ = ["preflight", "usable_cpus", "cuda_devices"]
