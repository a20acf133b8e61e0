"""The build steps every embedded zoo shares (tofu-mini's in `prepare.py`, muse-mini's in `muse_prepare.py`).

A zoo folder holds `data/`, `tokenizer/`, one folder per trained model and `manifest.json` (the config's key,
timings, the memorisation table). These helpers read and write that manifest, say which models are ready,
pick the models asked for, build under a file lock (concurrent prepares of one zoo wait for each other) and
train models in spawned worker processes (Ctrl-C / SIGTERM / a failed worker stop every worker at once: a
model is saved only when its training finished).

    ready = lambda: is_complete(root, cfg.key(), ALL, wanted)
    manifest = build_locked(root, cfg.key(), ready, lambda: build(...))
    train_in_workers(_train_one, root, json.dumps(asdict(cfg)), ["target", "retain90"], None, log, timings)
"""

from __future__ import annotations

import json
import os
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from unlearning.errors import ConfigError

MANIFEST = "manifest.json"


def read_manifest(root: Path, key: str) -> dict | None:
    """The zoo's manifest when it was written for this config (`key`), else None."""
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("key") == key else None


def write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, root / MANIFEST)


def on_disk(root: Path, names: Iterable[str]) -> list[str]:
    """The models among `names` whose weights are in the zoo folder."""
    return [m for m in names if (root / m / "config.json").exists()]


def is_complete(root: Path, key: str, everything: Iterable[str], models: Iterable[str]) -> bool:
    """Every model of `models` is trained and in the manifest's memorisation table."""
    manifest = read_manifest(root, key)
    have = set(on_disk(root, everything))
    return manifest is not None and all(m in have and m in manifest.get("memorisation", {}) for m in models)


def pick_models(models: Iterable[str] | str | None, default: Sequence[str], everything: Sequence[str],
                fix: str) -> tuple[str, ...]:
    """None -> `default`; "all" -> `everything`; else the named ones, comma-separated or a list (one-line
    ConfigError naming the `prepare` field `models` with `fix` on a bad name)."""
    if models is None:
        return tuple(default)
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else [str(m) for m in models]
    if names == ["all"]:
        return tuple(everything)
    if not names or any(m not in everything for m in names):
        raise ConfigError("prepare", field="models", value=",".join(names), fix=fix)
    return tuple(dict.fromkeys(names))


def build_locked(root: Path, key: str, ready: Callable[[], bool], build: Callable[[], dict]) -> dict:
    """The cached manifest when `ready()`, else `build()` under the zoo's file lock (checked again inside)."""
    from filelock import FileLock

    if ready():
        return {**read_manifest(root, key), "cached": True}
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".prepare.lock")):  # another process may be preparing the same zoo
        if ready():
            return {**read_manifest(root, key), "cached": True}
        return build()


def train_in_workers(train_one: Callable[..., dict], root: Path, cfg_json: str, todo: Sequence[str],
                     workers: int | None, log: Callable[[str], None], timings: dict[str, Any]) -> None:
    """Train `todo` with `train_one(root, cfg_json, name, threads)` in spawned workers (all cores shared
    among them); each model's seconds and the wall time go to `timings`."""
    workers, threads = worker_layout(todo, workers)
    t = time.perf_counter()
    pool = get_context("spawn").Pool(processes=workers)
    try:
        jobs = {m: pool.apply_async(train_one, (str(root), cfg_json, m, threads)) for m in todo}
        for m, job in jobs.items():
            stats = job.get()
            timings[m] = stats["seconds"]
            log(f"{m} trained in {stats['seconds']:.1f}s (final loss {stats['final_loss']:.3f})")
        pool.close()
    except BaseException:  # Ctrl-C / SIGTERM / a failed worker: no worker goes on training into the cache
        pool.terminate()
        raise
    finally:
        pool.join()
    timings["training_wall"] = time.perf_counter() - t


def worker_layout(todo: Sequence[str], workers: int | None) -> tuple[int, int]:
    """(workers, threads each) that `train_in_workers` uses for `todo` (for the log line before it)."""
    n_cpu = os.cpu_count() or 1
    workers = workers or min(n_cpu, len(todo))
    return workers, max(1, n_cpu // workers)
