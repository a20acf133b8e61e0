"""Fixtures of the sweep-service tests: a migrated SQLite MLflow store (built once, copied per test) and a
points.jsonl of a small finished sweep."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory):
    """An empty MLflow SQLite database with its schema. The migrations take 5-15 s on 2 cores, so the result is
    kept in the repo's ignored .cache/ per MLflow version and copied from there on later runs."""
    import mlflow
    from mlflow import MlflowClient

    cached = REPO / ".cache" / "test-mlflow" / f"mlflow-{mlflow.__version__}.db"
    if not cached.is_file():
        fresh = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copy(fresh, tmp)
        os.replace(tmp, cached)  # atomic: a concurrent session sees the whole file or none
    return cached


@pytest.fixture
def sqlite_uri(tmp_path, _mlflow_db_template):
    """A fresh sqlite://// tracking URI in this test's tmp_path."""
    path = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_db_template, path)
    return f"sqlite:///{path}"



@pytest.fixture
def finished_sweep(tmp_path):
    """(spec, sweep_dir) of a small finished sweep folder (see sweep_data.py)."""
    from sweep_data import write_finished_sweep

    return write_finished_sweep(tmp_path)
