"""MLflow tracking that never stops training: a thin wrapper over `mlflow.MlflowClient`.

    from sweeps.recording.tracking import Tracker
    tr = Tracker(spec.tracking_uri(), spec.experiment_name())
    parent = tr.parent_run(sweep_id="tofu-mini", name="tofu-mini", tags={"method": "NPO"})
    child = tr.child_run(parent, trial_id="a1_00000", name="trial a1_00000", tags={"search_id": "..."})
    tr.log_params(child, {"method": {"name": "NPO", "hparams": {"beta_dv": 2.0}}})  # -> method.hparams.beta_dv
    tr.log_metrics(child, {"forget_quality": 0.3, "model_utility": 0.6}, step=1)  # step = epoch
    tr.log_dict(child, resolved_config, "config/resolved.yaml")
    tr.end_run(child, "FAILED", reason="loss became NaN")
    tr.flush()                                   # retry whatever is queued; True when nothing is left

Runs are addressed by `RunRef`s, not ids: the parent is found by tags (sweep_id, run_role=parent) before it
is created, a child by (sweep_id, trial_id, run_role=trial), so retried trials and resumed sweeps attach to
the runs they already have instead of creating duplicates. A ref whose run could not be created yet is
resolved later, so work logged while the server is down is replayed in order once it is back.

Never fatal: each operation runs in a try/except; on failure the operation is queued (bounded, oldest
dropped first) and retried in order on the next call (at most every `retry_interval_s` seconds, so a dead
server costs one timeout per interval, not per call) and by `flush()`. Failures are counted by cause
(`failure_cause`: disk full (ENOSPC), read-only file system (EROFS), permission denied, connection refused,
...): the first of each cause is ONE warning line, MLflow's own log records and tracebacks are kept off the
console, and `behind(sweep_dir)` gives the end-of-sweep lines (a count per cause, what is pending, and the
`unlearn-sweep sync SWEEP_DIR` command that catches up from points.jsonl). The store side (whether it can be
written, failure causes, the retry queue) is `sweeps.recording.tracking_store`; this module is what a sweep logs: the
experiment, its runs, params, metrics, tags and artifacts. Params are immutable in MLflow: a param already logged
with the same value is skipped, one with a different value is kept as first logged (warning). Stores: sqlite
(absolute path) by default, an MLflow server or a database URL; the file store is refused
(`sweeps.spec.check_tracking_uri`). For an HTTP server set MLFLOW_HTTP_REQUEST_MAX_RETRIES /
MLFLOW_HTTP_REQUEST_TIMEOUT to bound each attempt.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

# the store, its failure causes and the retry queue (re-exported: `from sweeps.recording.tracking import store_problem`)
from sweeps.recording.tracking_store import StoreConnection, failure_cause, quiet_mlflow, store_problem  # noqa: F401

log = logging.getLogger(__name__)

MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value's length
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
END_STATUSES = ("FINISHED", "FAILED", "KILLED")
NOTE_TAG = "mlflow.note.content"  # a run's (or experiment's) description in the MLflow UI
VIEW_KEY = "objectives"  # the experiment's shared view: <ui>/#/experiments/<id>/runs?viewStateShareKey=objectives
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"  # MLflow's tag for a shared experiment-page view (JSON)
OBJECTIVES_TAG = "sweep_objectives"  # the experiment's objectives, comma-separated (read by `unlearn-sweep ui`)


@dataclass(eq=False)
class RunRef:
    """A run addressed by its tags; ``run_id`` is filled once it exists in the store."""

    role: str  # "parent" | "trial"
    sweep_id: str
    trial_id: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    parent: "RunRef | None" = None
    run_id: str | None = None

    def filter_string(self) -> str:
        parts = [f"tags.sweep_id = '{_quote(self.sweep_id)}'", f"tags.run_role = '{self.role}'"]
        if self.trial_id is not None:
            parts.append(f"tags.trial_id = '{_quote(self.trial_id)}'")
        return " and ".join(parts)


def _quote(text: str) -> str:
    if "'" in text:
        raise ValueError(f"ids used as MLflow tags must not contain quotes: {text!r}")
    return text


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts -> dotted keys with string values (lists/tuples as JSON, None as 'None')."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(list(value), default=str)
        else:
            out[name] = str(value)
    return {k: v[:MAX_PARAM_VALUE] for k, v in out.items()}


def open_tracker(tracking_uri: str, experiment_name: str, optional: bool = False,
                 log: Callable[[str], None] = print) -> "Tracker":
    """The sweep's Tracker, after checking within seconds that the store can be written. A store that
    cannot is a one-line ConfigError, or, with `optional`, a disabled Tracker (points.jsonl keeps every
    result; `unlearn-sweep sync SWEEP_DIR` writes them to MLflow later, without duplicates)."""
    from unlearning.errors import ConfigError

    # bound each HTTP attempt during the sweep: a server that dies later costs seconds, never minutes
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    with quiet_mlflow():
        problem = store_problem(tracking_uri)
    if problem is None:
        return Tracker(tracking_uri, experiment_name)
    if not optional:
        raise ConfigError("tracking", field="tracking.uri", value=tracking_uri,
                          fix=f"the MLflow store cannot be written ({problem}): start the server or fix the URI "
                              "(--tracking-uri), or run with --tracking-optional and `unlearn-sweep sync` later")
    log(f"MLflow store {tracking_uri} cannot be written ({problem}): tracking is off for this run; results go to "
        "points.jsonl, `unlearn-sweep sync SWEEP_DIR` writes them to MLflow later")
    tracker = Tracker(tracking_uri, experiment_name, enabled=False)
    tracker.off_reason = f"{tracking_uri}: {problem}"
    return tracker


class Tracker(StoreConnection):
    """See the module docstring. ``max_queue`` bounds the operations kept while the store is unreachable;
    ``enabled=False`` records nothing (the sweep runs without tracking; `sync` catches up later). The client, the
    retry queue and the failure counts are `sweeps.recording.tracking_store.StoreConnection`'s."""

    def __init__(self, tracking_uri: str, experiment_name: str, *, artifact_location: str | None = None,
                 max_queue: int = 10_000, retry_interval_s: float = 30.0, enabled: bool = True):
        self.experiment_name = experiment_name
        super().__init__(tracking_uri, artifact_location=artifact_location, max_queue=max_queue,
                         retry_interval_s=retry_interval_s, enabled=enabled)
        self.experiment_id: str | None = None

    # ---- experiment and runs ----------------------------------------------------------------------

    def _experiment(self) -> str:
        if self.experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                self.experiment_id = self.client.create_experiment(self.experiment_name,
                                                                   artifact_location=self.artifact_location)
            else:
                self.experiment_id = exp.experiment_id
        return self.experiment_id

    def ensure_experiment(self) -> str | None:
        """Create the experiment if needed (call once, in the driver); its id, or None if unreachable."""
        self._submit(f"create experiment {self.experiment_name}", self._experiment)
        return self.experiment_id

    def describe_experiment(self, text: str) -> bool:
        """Set the experiment's description (MLflow's `mlflow.note.content` tag, shown above its runs)."""
        def op() -> None:
            self.client.set_experiment_tag(self._experiment(), "mlflow.note.content", text)

        return self._submit("describe the experiment", op)

    def _resolve(self, ref: RunRef) -> str:
        """The ref's run id: looked up by tags first, created only when absent."""
        if ref.run_id is not None:
            return ref.run_id
        exp = self._experiment()
        if ref.parent is not None:
            self._resolve(ref.parent)
        found = self.client.search_runs([exp], filter_string=ref.filter_string(), max_results=2,
                                        order_by=["attributes.start_time ASC"])
        if found:
            ref.run_id = found[0].info.run_id
            return ref.run_id
        tags = {**ref.tags, "sweep_id": ref.sweep_id, "run_role": ref.role}
        if ref.trial_id is not None:
            tags["trial_id"] = ref.trial_id
        if ref.parent is not None:
            tags["mlflow.parentRunId"] = ref.parent.run_id
        run = self.client.create_run(exp, tags=tags, run_name=ref.name)
        ref.run_id = run.info.run_id
        return ref.run_id

    def parent_run(self, sweep_id: str, name: str | None = None, tags: Mapping[str, Any] | None = None) -> RunRef:
        """The sweep's parent run (found by its sweep_id tag, created once)."""
        ref = RunRef("parent", sweep_id, name=name or sweep_id, tags={k: str(v) for k, v in (tags or {}).items()})
        self._submit(f"parent run of {sweep_id}", lambda: self._resolve(ref))
        return ref

    def child_run(self, parent: RunRef, trial_id: str, name: str | None = None,
                  tags: Mapping[str, Any] | None = None) -> RunRef:
        """The trial's child run (found by sweep_id + trial_id tags, created once)."""
        ref = RunRef("trial", parent.sweep_id, trial_id=trial_id, name=name or trial_id,
                     tags={k: str(v) for k, v in (tags or {}).items()}, parent=parent)
        self._submit(f"child run of trial {trial_id}", lambda: self._resolve(ref))
        return ref

    # ---- logging ----------------------------------------------------------------------------------

    def log_params(self, ref: RunRef, params: Mapping[str, Any]) -> bool:
        """Flattened params, each logged once (same value again: skipped; a different value: kept as is)."""
        flat = flatten(params)

        def op() -> None:
            from mlflow.entities import Param

            run_id = self._resolve(ref)
            have = self.client.get_run(run_id).data.params
            changed = {k: (have[k], v) for k, v in flat.items() if k in have and have[k] != v}
            if changed:
                log.warning("MLflow params are immutable; keeping the first values of %s", sorted(changed))
            todo = [Param(k, v) for k, v in flat.items() if k not in have]
            for i in range(0, len(todo), PARAMS_PER_BATCH):
                self.client.log_batch(run_id, params=todo[i:i + PARAMS_PER_BATCH])

        return self._submit(f"log {len(flat)} params", op)

    def log_metrics(self, ref: RunRef, metrics: Mapping[str, Any], step: int, once_key: str | None = None) -> bool:
        """Scalar metrics at ``step`` (the epoch) in one `log_batch`; non-numeric values are skipped.
        ``once_key``: skip the whole batch when that metric already has a value at ``step`` (a resumed trial
        logging its step-0 point again)."""
        stamp = int(time.time() * 1000)
        items = {str(k): float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}

        def op() -> None:
            from mlflow.entities import Metric

            run_id = self._resolve(ref)
            if once_key is not None and any(m.step == int(step) for m in self.client.get_metric_history(run_id, once_key)):
                return
            batch = [Metric(k, v if math.isfinite(v) else float("nan"), stamp, int(step)) for k, v in items.items()]
            for i in range(0, len(batch), METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=batch[i:i + METRICS_PER_BATCH])

        return self._submit(f"log {len(items)} metrics at step {step}", op)

    def set_tags(self, ref: RunRef, tags: Mapping[str, Any]) -> bool:
        def op() -> None:
            from mlflow.entities import RunTag

            run_id = self._resolve(ref)
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

        return self._submit(f"set {len(tags)} tags", op)

    def log_dict(self, ref: RunRef, obj: Any, artifact_file: str) -> bool:
        """A dict as a YAML (.yaml/.yml) or JSON artifact at ``artifact_file`` (e.g. config/resolved.yaml)."""
        text = (yaml.safe_dump(obj, sort_keys=False) if artifact_file.endswith((".yaml", ".yml"))
                else json.dumps(obj, indent=2, default=str))
        return self.log_text(ref, text, artifact_file)

    def log_text(self, ref: RunRef, text: str, artifact_file: str) -> bool:
        def op() -> None:
            run_id = self._resolve(ref)
            self.client.log_text(run_id, text, artifact_file)

        return self._submit(f"log artifact {artifact_file}", op)

    def log_artifact(self, ref: RunRef, local_path: str | Path, artifact_path: str | None = None) -> bool:
        """A local file (its content is read when the operation runs: keep it until flushed)."""
        path = str(local_path)

        def op() -> None:
            run_id = self._resolve(ref)
            self.client.log_artifact(run_id, path, artifact_path)

        return self._submit(f"log artifact {Path(path).name}", op)

    def end_run(self, ref: RunRef, status: str = "FINISHED", reason: str | None = None) -> bool:
        """Terminate the run with FINISHED / FAILED / KILLED; ``reason`` goes to the `failure_reason` tag."""
        if status not in END_STATUSES:
            raise ValueError(f"status must be one of {END_STATUSES}")

        def op() -> None:
            run_id = self._resolve(ref)
            if reason is not None:
                self.client.set_tag(run_id, "failure_reason", str(reason)[:5000])
            elif "failure_reason" in self.client.get_run(run_id).data.tags:  # resumed after an interruption
                self.client.delete_tag(run_id, "failure_reason")
            self.client.set_terminated(run_id, status=status)

        return self._submit(f"end run ({status})", op)

    def logged_steps(self, ref: RunRef, key: str = "epoch") -> set[int]:
        """The steps at which `key` was logged in the ref's run (read now; raises when the store is down)."""
        run_id = self._resolve(ref)
        return {m.step for m in self.client.get_metric_history(run_id, key)}

    def mark_running(self, ref: RunRef) -> bool:
        """Set a (re-attached) run's status back to RUNNING, e.g. a trial resumed after an interruption."""
        def op() -> None:
            run_id = self._resolve(ref)
            if self.client.get_run(run_id).info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")

        return self._submit("mark run running", op)

