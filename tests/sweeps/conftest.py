"""Fixtures of the sweep-service tests: a migrated SQLite MLflow store (built once, copied per test), a
points.jsonl of a small finished sweep, a private local Ray for the real-Tuner tests (`local_ray`), and the
service's own loopback Ray settings for the end-to-end sweeps (`ray_local`: `run_sweep` starts Ray itself)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqlite_uri(tmp_path, mlflow_db_template):
    """A fresh sqlite://// tracking URI in this test's tmp_path."""
    path = tmp_path / "mlflow.db"
    shutil.copy(mlflow_db_template, path)
    return f"sqlite:///{path}"



@pytest.fixture
def finished_sweep(tmp_path):
    """(spec, sweep_dir) of a small finished sweep folder (see sweep_data.py)."""
    from sweep_data import write_finished_sweep

    return write_finished_sweep(tmp_path)


@pytest.fixture(scope="module")
def local_ray():
    """A private local Ray (2 CPUs, loopback, its own temp folder), shut down after this module."""
    import ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp = tempfile.mkdtemp(prefix="tune-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
             object_store_memory=100 * 1024 * 1024, logging_level="ERROR", configure_logging=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_local():
    """The service's loopback Ray settings for the end-to-end sweeps (`run_sweep` starts and stops its Ray);
    whatever Ray is left is shut down after the module."""
    from sweeps.operations.service import LOOPBACK_ENV

    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)
    import ray

    yield
    ray.shutdown()


def fill_up(folder: Path) -> None:
    """Write zeros to `folder`/fill until its file system is full (ENOSPC)."""
    fd = os.open(folder / "fill", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(name, size="256k", read_only=False, full=False)`: a real tmpfs mounted under tmp_path (read-only, or
    filled to the last byte: a full disk; `tmpfs.fill_up(folder)` fills one later); unmounted after the test. Skips where mounting is not allowed (not root)."""
    import subprocess

    mounted: list[Path] = []

    def mount(name: str, size: str = "256k", read_only: bool = False, full: bool = False) -> Path:
        path = tmp_path / name
        path.mkdir()
        opts = f"size={size},mode=0777"
        if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode:
            pytest.skip("mounting a tmpfs needs root")
        mounted.append(path)
        if full:
            fill_up(path)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return path

    mount.fill_up = fill_up
    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)
