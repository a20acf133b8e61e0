"""Checks of a validated spec against the machine it is about to run on, before anything is started or written.

    from sweeps.operations.preflight import preflight
    preflight(spec, address=None)        # local run: CPUs, GPUs, writable folders, data and models there;
                                         # ConfigError (one line naming the spec field) if not

`sweeps.operations.service.run_sweep` calls it first, so a sweep that cannot run here fails before Ray starts,
before zoo models are trained and before the sweep folder (or its spec.yaml) is written. A local Ray is sized to the
spec (`init_ray`), so the post-connect `Resources.check_fits` can never fail locally: the CPU and GPU checks
are done here against what this process may use. On a cluster (`address` given) the nodes' resources are
only known after connecting, which the post-connect check covers; what can be checked without starting
anything (the storage folder when it is local) is still checked here. What the trials would load is checked too,
so that it fails here and not in every trial after Ray started: a data folder and its forget split, generated
mini data of an explicit size (`tofu-mini-tiny`), and offline (HF_HUB_OFFLINE=1) hub models, hub datasets and
lm-eval tasks' hub datasets that are not in the local cache.
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
        try:
            read_only = bool(os.statvfs(p).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        cause = "is on a read-only file system (EROFS)" if read_only else "is not writable by this user"
        raise ConfigError(where, field=field, value=str(path),
                          fix=f"{p} {cause}: give a folder you can write ({what})")


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme.split("+")[0].lower() != "sqlite" or ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1]
    return Path(path) if path.startswith("/") else None


def _offline(datasets: bool = False) -> bool:
    """Hugging Face offline mode (for models; `datasets`: also HF_DATASETS_OFFLINE)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") + (("HF_DATASETS_OFFLINE",) if datasets else ())
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"} for v in names)


def _check_benchmark(spec: Any, where: str) -> None:
    """A local source must hold the benchmark's forget split (`Benchmark.forget_split_file`: TOFU's split, MUSE's
    `raw/<forget split>`)."""
    d = spec.data
    if d.source == "hub" or d.source.startswith(spec.benchmark.mini):
        return
    from unlearning.data.io import find_split_file, resolve_source
    from unlearning.errors import DataError

    try:
        src = resolve_source(d.source)
        if isinstance(src, Path):
            find_split_file(src, spec.benchmark.forget_split_file(d), spec.benchmark.split_label)
    except DataError as exc:
        raise ConfigError(where, field="data.source", value=d.source, fix=exc.fix) from None


def _check_generated_data(spec: Any, where: str) -> None:
    """A generated source of an explicit size (`tofu-mini-tiny`) must exist, or come from the zoo models the driver
    trains before Ray starts (`ensure_zoo_models`); otherwise every trial failed on it after Ray had started."""
    from unlearning.models.zoo import parse_zoo_name

    d, mini = spec.data, spec.benchmark.mini
    if not d.source.startswith(f"{mini}-"):
        return
    size = d.source[len(mini) + 1:]
    zoo, data_dir = spec.benchmark.zoo_data(size)  # the zoo whose data it is or is made from, its data folder
    if data_dir.is_dir():
        return
    names = [n for m in spec.models for n in (m.name, m.retain_model) if n and n.startswith(zoo)]
    if any(parse_zoo_name(n)[0].size == size for n in names):
        return  # trained (with its data) before Ray starts
    raise ConfigError(where, field="data.source", value=d.source,
                      fix=f"{zoo}-{size} is not generated on this machine and no model of the spec comes from that "
                          f"zoo: run `unlearn-sweep prepare {zoo} --size {size}`, or use data.source {mini} (the data "
                          "of the models' own zoo)")


def _hub_dataset_missing(repo_id: str) -> bool:
    """True when offline mode is on and neither the hub cache nor the datasets cache holds `repo_id`."""
    if not _offline(datasets=True):
        return False
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        owner, name = repo_id.split("/", 1)
        hub = Path(HF_HUB_CACHE) / f"datasets--{owner}--{name}"
        home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
        cached = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets")
        return not hub.is_dir() and not any(cached.glob(f"{owner}___{name.lower()}*"))
    except Exception:  # noqa: BLE001 - an odd id or cache layout: leave it to the loader
        return False


def _check_hub_data(spec: Any, where: str) -> None:
    """A hub data source must be in the local cache when offline mode is on (else every trial fails to load it)."""
    from unlearning.data.io import _HUB_ID

    d = spec.data
    if d.source == "hub":
        repo = spec.benchmark.hub_dataset(d)
        if repo is None:
            return  # several datasets (LKF's nmndeep/LKF-*), found by the loader
    elif _HUB_ID.match(d.source) and not Path(d.source).expanduser().exists():
        repo = d.source
    else:
        return
    if _hub_dataset_missing(repo):
        raise ConfigError(where, field="data.source", value=d.source,
                          fix=f"offline mode is on (HF_HUB_OFFLINE=1) and the hub dataset {repo} is not in the local "
                              f"cache: download it first (HF_HUB_OFFLINE=0 huggingface-cli download --repo-type "
                              f"dataset {repo}) or give a local folder")


def _check_lm_eval_data(spec: Any, where: str) -> None:
    """lm-eval's hub tasks (wmdp_bio, mmlu, ...: their `dataset_path`) must be cached when offline mode is on
    (the names were checked with the spec; wmdp-mini's tasks and `data_files` are local)."""
    if "lm_eval" not in spec.eval.settings:
        return
    from unlearning.evaluation.wmdp_eval import (WMDP_MINI_GROUPS, WMDP_MINI_TASKS, _entry_config, split_settings,
                                                 task_manager)

    _, cfg = split_settings(spec.eval.settings, where="spec")
    if cfg is None or not _offline(datasets=True):
        return
    tm = task_manager(cfg)
    for task in cfg.tasks:
        if task in WMDP_MINI_TASKS or task in WMDP_MINI_GROUPS or task in cfg.data_files:
            continue
        todo, seen, paths = [task], set(), set()
        while todo and len(seen) < 500:  # a group's members, down to the tasks that name a dataset
            name = todo.pop()
            entry = tm.task_index.get(name) if name not in seen else None
            seen.add(name)
            if entry is None:
                continue
            entry_cfg = _entry_config(entry)
            members = entry_cfg.get("task")
            todo += [m for m in members if isinstance(m, str)] if isinstance(members, list) else []
            if getattr(entry.kind, "name", "") == "TAG":  # a tag's members are the tasks that carry it
                todo += sorted(entry.tags or ())
            if isinstance(entry_cfg.get("dataset_path"), str):
                paths.add(entry_cfg["dataset_path"])
        for repo in sorted(paths):
            if "/" in repo and not Path(repo).expanduser().exists() and _hub_dataset_missing(repo):
                raise ConfigError(where, field="eval.settings.lm_eval.tasks", value=task,
                                  fix=f"offline mode is on (HF_HUB_OFFLINE=1) and the task's hub dataset {repo} is "
                                      f"not in the local cache: download it first (HF_HUB_OFFLINE=0 huggingface-cli "
                                      f"download --repo-type dataset {repo}), or use wmdp-mini's local tasks "
                                      "(wmdp_mini, mmlu_mini)")


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


def preflight(spec: Any, address: str | None = None, tracking_optional: bool = False) -> None:
    """ConfigError (one line, naming the spec field) when `spec` cannot run here; creates and starts nothing.
    `tracking_optional`: an MLflow sqlite folder that cannot be written is left to `open_tracker` (tracking off)."""
    where = spec.source_path or spec.name
    res = spec.resources
    _check_benchmark(spec, where)
    _check_generated_data(spec, where)
    sweep_dir = Path(spec.storage).expanduser() / spec.name
    _writable_folder(sweep_dir, where, "storage", f"the sweep folder {sweep_dir}")
    if spec.tracking.uri and not tracking_optional:  # the default sqlite lives in the sweep folder (checked above)
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
    _check_hub_data(spec, where)
    _check_lm_eval_data(spec, where)
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
