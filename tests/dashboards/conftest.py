"""Fixtures of the report / MLflow UI tests: a migrated SQLite MLflow database (`mlflow_db_template`, from
tests/conftest.py) and the sweep of report_sweep.py."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
