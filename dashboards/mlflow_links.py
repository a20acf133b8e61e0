"""The sweep's MLflow store as the report sees it: which store, the run URLs, and logging the report files
as artifacts of the sweep's parent run. Nothing here raises: a store that cannot be reached gives no links
and a message.

    from dashboards.mlflow_links import sweep_tracking_uri, experiment_id, run_url, log_report_files
    uri = sweep_tracking_uri(spec, sweep_dir)                     # sqlite beside the sweep unless the spec names one
    exp, why = experiment_id(uri, spec.experiment_name())
    run_url("http://127.0.0.1:5000", exp, run_id)                # http://127.0.0.1:5000/#/experiments/<exp>/runs/<run>
    ok, message = log_report_files(uri, spec.experiment_name(), spec.name, [html, png])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

DEFAULT_UI = "http://127.0.0.1:5000"
ARTIFACT_DIR = "report"


def sweep_tracking_uri(spec: Any, sweep_dir: str | Path, override: str | None = None) -> str:
    """The tracking URI: the override, else the spec's `tracking.uri`, else sqlite:///<sweep_dir>/mlflow.db
    (the sweep's own folder, wherever it now lies)."""
    return override or spec.tracking.uri or f"sqlite:///{Path(sweep_dir).resolve() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def store_missing(uri: str) -> str | None:
    """Why the store cannot hold this sweep's runs without being created (a missing SQLite file), else None."""
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        return f"no MLflow database at {db}"
    return None


def experiment_id(uri: str, experiment: str) -> tuple[str | None, str]:
    """(the experiment's id, "") or (None, why); never creates anything."""
    missing = store_missing(uri)
    if missing:
        return None, missing
    try:
        from mlflow import MlflowClient

        exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    except Exception as exc:  # noqa: BLE001 - the report is written without links
        return None, f"MLflow store {uri} unreachable ({type(exc).__name__}: {exc})"
    if exp is None:
        return None, f"experiment {experiment!r} not found in {uri}"
    return exp.experiment_id, ""


def run_url(ui: str, exp_id: str | None, run_id: str | None) -> str | None:
    """The MLflow UI page of a run: <ui>/#/experiments/<exp id>/runs/<run id>."""
    if not exp_id or not run_id:
        return None
    return f"{ui.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id}"


def log_report_files(uri: str, experiment: str, sweep_id: str, files: Sequence[str | Path]) -> tuple[bool, str]:
    """Log the files under `report/` of the sweep's parent run (found by its sweep_id tag; never created
    here). (ok, message)."""
    missing = store_missing(uri)
    if missing:
        return False, f"{missing}: report not logged to MLflow"
    try:
        from sweeps.recording.tracking import RunRef, Tracker

        tracker = Tracker(uri, experiment)
        exp = tracker.client.get_experiment_by_name(experiment)
        found = exp is not None and tracker.client.search_runs(
            [exp.experiment_id], RunRef("parent", sweep_id).filter_string(), max_results=1)
        if not found:  # never create a parent run the sweep did not make
            return False, f"no parent run of sweep {sweep_id} in experiment {experiment!r} of {uri}: report not logged"
        parent = tracker.parent_run(sweep_id, name=sweep_id)  # found by its tags
        for f in files:
            tracker.log_artifact(parent, f, ARTIFACT_DIR)
        if not tracker.flush():
            return False, f"MLflow store {uri} unreachable: not logged ({', '.join(tracker.pending)})"
    except Exception as exc:  # noqa: BLE001 - never fatal: the files are on disk
        return False, f"logging the report to MLflow failed ({type(exc).__name__}: {exc})"
    return True, f"logged to MLflow run {parent.run_id} under {ARTIFACT_DIR}/"
