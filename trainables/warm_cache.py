"""Warm a new install's caches once, in the background and at the lowest CPU priority, so that the first sweep does
not pay for them on its trials' clock.

* DeepSpeed's CPU comm op. On a machine without CUDA, every process that initialises DeepSpeed loads the op
  `ShareMemCommBuilder` builds from C++ into TORCH_EXTENSIONS_DIR (DeepSpeed's `TorchBackend` does it even for one
  process). The first load builds it: 25 s on 2 idle cores, 43 CPU-seconds, measured. A new clone's first sweep
  used to build it in its first trials' workers, while both trial slots waited.
* The bytecode (.pyc) of the modules that a sweep's driver and its workers import. uv installs none, so whichever
  process imports a module first compiles it.

`unlearn-sweep prepare` and `run` (a local Ray) call `start()`. It returns at once: a background process at the
lowest priority (`python -m trainables.warm_cache`, `main` says how) does the work. It gets only the CPU nothing
else wants, that is the gaps of the zoo's training and of the sweep's start, and takes almost nothing from the
training itself. A trial that needs the op
before it is built waits for the build (torch's build lock) and does not build it again. A warm-up is a no-op when
it is done (a marker in TORCH_EXTENSIONS_DIR names this Python, torch and DeepSpeed) or when another one is running
(a lock). `UNLEARN_SWEEP_NO_WARM_CACHE=1` turns it off (the test suite does, except in the test of this module).
Its log is `TORCH_EXTENSIONS_DIR/warm-cache.log`.

    from trainables.warm_cache import start
    start()                             # returns at once; True when a warm-up was started
    python -m trainables.warm_cache     # the same work in the foreground (at the lowest priority)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from unlearning.paths import torch_extensions_dir

ENV_OFF = "UNLEARN_SWEEP_NO_WARM_CACHE"
MARKER, LOCK, LOG = "warm-cache.json", "warm-cache.lock", "warm-cache.log"
# what a sweep's driver imports besides what its workers do (trainables.warm_imports.HEAVY_MODULES)
DRIVER_MODULES = ("ray.tune", "mlflow", "mlflow.store.tracking.sqlalchemy_store", "optuna",
                  "sklearn.gaussian_process", "sweeps.operations.service", "sweeps.search.tuning",
                  "sweeps.search.trajectory_searcher", "sweeps.recording.recorder", "sweeps.recording.tracking",
                  "sweeps.selection.pareto_table")


def _identity() -> dict[str, str]:
    """What the warmed caches belong to: this Python and the torch and DeepSpeed it has (no import of either)."""
    out = {"python": sys.executable}
    for dist in ("torch", "deepspeed"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    return out


def is_done(folder: Path | None = None) -> bool:
    """Whether this install's caches were warmed (its marker names this Python, torch and DeepSpeed)."""
    try:
        record = json.loads(((folder or torch_extensions_dir()) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(record.get(k) == v for k, v in _identity().items())


def start() -> bool:
    """Start a warm-up in the background unless it is turned off or done; True when one was started."""
    if os.environ.get(ENV_OFF) == "1":
        return False
    folder = torch_extensions_dir()
    if is_done(folder):
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOG, "ab") as log:
            # its own session: Ctrl-C in the terminal spares it (a build killed halfway leaves torch's lock behind),
            # and `main` lowers the priority of the session's whole autogroup (see there)
            subprocess.Popen([sys.executable, "-m", "trainables.warm_cache"], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, "TORCH_EXTENSIONS_DIR": str(folder)})
    except OSError:
        return False  # a cache that cannot be written: the trials build and compile what they need, as before
    return True


def _autogroup() -> str:
    """This process's autogroup and its nice value ("/autogroup-85 nice 19"), "" where there are none."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return ""


def main() -> int:
    """The warm-up itself, at the lowest priority (its compiler processes inherit it): every import a trial's
    worker does (and its first use, which builds the op), then the driver's modules; writes the marker. Exits at
    once when another warm-up holds the lock.

    The lowest priority takes three settings on Linux. A process's nice value and scheduling class only rank it
    among the processes of its own autogroup (the kernel groups processes by session where
    /proc/sys/kernel/sched_autogroup_enabled is 1, as on most desktops and this project's CI), and every autogroup
    gets an equal share of the CPU. So the session that `start` opened gets autogroup nice 19 (only when this process
    leads it: run from a shell, the autogroup is the shell's), and the process itself the idle class and nice 19. With nice 19 alone in a session of its own, the zoo's
    training took 150 s instead of 110 s (measured)."""
    if os.getsid(0) == os.getpid():   # the leader of the session `start` opened: lower that session only (run from
        with contextlib.suppress(OSError):      # a shell, it would lower the whole terminal session's autogroup)
            Path("/proc/self/autogroup").write_text("19")
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))   # runs only on a CPU nothing else wants
    os.nice(19)
    folder = torch_extensions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(folder))
    with open(folder / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0
        if is_done(folder):
            return 0
        t0 = time.perf_counter()
        from trainables.warm_imports import HEAVY_MODULES, import_heavy

        took = import_heavy((*HEAVY_MODULES, *DRIVER_MODULES))
        record = {**_identity(), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                  "idle_class": os.sched_getscheduler(0) == getattr(os, "SCHED_IDLE", None),
                  "autogroup": _autogroup(),
                  "seconds": round(time.perf_counter() - t0, 1), "modules": len(took),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n")
        print(f"warm-up done in {record['seconds']}s: {len(took)} modules and their first use", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
