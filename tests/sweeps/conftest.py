"""Fixtures of the sweep-service tests: a migrated SQLite MLflow store (built once, copied per test) and a
points.jsonl of a small finished sweep."""

from __future__ import annotations

import shutil
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
