"""Fixtures of the report / MLflow UI tests: a migrated SQLite MLflow database (built once per MLflow version,
cached in the repo's ignored .cache/, shared with tests/sweeps) and the sweep of report_sweep.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory) -> Path:
    import mlflow
    from mlflow import MlflowClient

    cached = REPO / ".cache" / "test-mlflow" / f"mlflow-{mlflow.__version__}.db"
    if not cached.is_file():
        fresh = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copy(fresh, tmp)
        os.replace(tmp, cached)
    return cached


@pytest.fixture
def sweep(tmp_path):
    """(spec, sweep_dir, run_ids) without an MLflow store."""
    from report_sweep import write_sweep

    return write_sweep(tmp_path)


@pytest.fixture
def sweep_with_mlflow(tmp_path, mlflow_db_template):
    """(spec, sweep_dir, run_ids) with <sweep>/mlflow.db holding the parent run and one child run per trial."""
    from report_sweep import write_sweep

    return write_sweep(tmp_path, mlflow_db_template)
