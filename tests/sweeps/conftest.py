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
    from sweeps.service import LOOPBACK_ENV

    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)
    import ray

    yield
    ray.shutdown()
