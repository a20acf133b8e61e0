"""The background warm-up of a new install (`trainables/warm_cache.py`): `start()` runs the trial workers' imports
and first use (which builds DeepSpeed's CPU comm op into TORCH_EXTENSIONS_DIR) and the driver's imports in a
background process at the lowest priority (idle class, nice 19, its session's autogroup at nice 19), writes its
marker, and is then a no-op; a warm-up that finds another one holding the lock exits at once;
UNLEARN_SWEEP_NO_WARM_CACHE=1 starts nothing.

    .venv/bin/python -m pytest tests/sweeps/test_warm_cache.py -q      # about 15-40 s on 2 cores
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

from trainables import warm_cache
from unlearning.paths import torch_extensions_dir


def test_turned_off_it_starts_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(warm_cache.ENV_OFF, "1")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert warm_cache.start() is False
    assert list(tmp_path.iterdir()) == []


def test_a_second_warm_up_leaves_while_the_first_holds_the_lock_and_spares_its_callers_priority(tmp_path):
    """Run in the foreground (from a shell or a test), the warm-up shares its caller's session, whose autogroup
    priority must stay as it was: only the session `start` opens is lowered."""
    autogroup = "/proc/self/autogroup"
    before = open(autogroup).read() if os.path.exists(autogroup) else None
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    with open(tmp_path / warm_cache.LOCK, "w") as lock:   # held: the warm-up sets its priority, then leaves
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "trainables.warm_cache"], env=env, timeout=120)
    assert done.returncode == 0 and time.perf_counter() - t0 < 60
    assert not (tmp_path / warm_cache.MARKER).exists()   # it imported nothing and recorded nothing
    if before is not None:                               # Linux with autogroups
        assert open(autogroup).read() == before


@pytest.mark.slow
def test_start_warms_in_the_background_at_idle_priority_once(monkeypatch):
    """In the suite's own TORCH_EXTENSIONS_DIR (the op is built there once for every test that needs it)."""
    monkeypatch.delenv(warm_cache.ENV_OFF, raising=False)
    folder = torch_extensions_dir()
    (folder / warm_cache.MARKER).unlink(missing_ok=True)
    assert not warm_cache.is_done(folder)
    t0 = time.perf_counter()
    assert warm_cache.start() is True                     # returns at once: the work is in another process
    assert time.perf_counter() - t0 < 5
    deadline = time.time() + 600
    while not warm_cache.is_done(folder) and time.time() < deadline:
        time.sleep(1)
    record = json.loads((folder / warm_cache.MARKER).read_text())
    assert record["python"] == sys.executable and record["nice"] == 19 and record["idle_class"], record
    if os.path.exists("/proc/self/autogroup"):            # its session's autogroup is lowered too (Linux)
        assert record["autogroup"].endswith("nice 19"), record
    assert record["modules"] >= len(warm_cache.DRIVER_MODULES), record
    assert any((folder / "deepspeed_shm_comm").glob("deepspeed_shm_comm*.so"))   # the op is built
    assert warm_cache.start() is False                    # done: nothing more to start
