"""Driver-side Tune callback: every trial result goes to points.jsonl and to MLflow, from one process.

Trials never talk to MLflow themselves: the driver is the only writer (SQLite is single-writer, and a
tracking failure then cannot touch training). Per trial: an MLflow child run of the sweep's parent run,
found by tags before it is created (retries and resumes attach to it), every setting of its train config
(fixed and sampled, dotted train-config names such as `train.lr`, `method.hparams.beta`) as params, metrics at
every evaluation point (MLflow step = the trial's optimizer step, `epoch` logged beside; `<objective>_log10`
beside each log-scale objective) starting with the target model's evaluation at step 0 (epoch 0, the point
every trial starts from), the resolved trial config and the last evaluation as artifacts, and FINISHED /
FAILED with the reason. `sweeps.recording.tracking.Tracker` queues and retries whatever the
store refuses; nothing here raises into Tune.

Objectives first (`mlflow_metrics`): each batch lists the objectives (and `<objective>_log10`) first, so they are
the first metrics of every run (MLflow's run comparison opens its parallel-coordinates plot on the first one);
every other metric goes under `z_detail/` (forget_Q_A_PARA_Prob -> z_detail/forget_Q_A_PARA_Prob), which sorts
after them (`from_mlflow` reads either spelling back). The parent run's and each trial's description
(`mlflow.note.content`) name the objectives and, per trial, their latest values; the experiment holds a shared
view (`mlflow.sharedViewState.objectives`: the trials flat, the objectives and searched hyperparameters as
columns, sorted by the first objective) that `unlearn-sweep ui` prints as the experiment's page.

    callback = SweepRecorder({plan.search_id: (plan, shared.target_metrics), ...}, tracker, parent_ref,
                             results_log, objectives=spec.objectives)
    ray.tune.RunConfig(callbacks=[callback])
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Mapping, Sequence

from ray.tune import Callback

from sweeps.spec.objectives import Objective, tracked_metrics
from sweeps.recording.results import Point, ResultsLog
from sweeps.recording.tracking import NOTE_TAG, OBJECTIVES_TAG, VIEW_TAG, RunRef, Tracker
from trainables.trial import SWEEP_KEY
from unlearning.train.schedule import epoch_label

log = logging.getLogger(__name__)
ACTIVE_PROGRESS: Any = None  # the driver's live progress display (not pickled with the callback)
FAILED_KEY = "trial_failed"
SKIP_METRICS = {"epoch", "step", "trial_failed", "failure_reason", "training_iteration", "time_this_iter_s",
                "time_total_s", "timestamp", "iterations_since_restore", "time_since_restore", "done",
                "pid", "hostname", "node_ip", "date", "trial_id", "experiment_tag", "checkpoint_dir_name",
                "should_checkpoint", "config", "node_id"}


def sampled_params(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != SWEEP_KEY}


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items() if k not in SKIP_METRICS and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


def open_trial_run(tracker: Tracker, parent: RunRef, plan: Any, trial_id: str, hparams: Mapping[str, Any],
                   extra_tags: Mapping[str, Any] | None = None) -> RunRef:
    """A trial's MLflow child run (found by tags, created once) with its params: the live recorder and
    `unlearn-sweep sync` open runs the same way, so either can come first without duplicates."""
    from unlearning.train.fields import with_values

    ref = tracker.child_run(parent, trial_id=trial_id, name=f"{plan.label} {trial_id}",
                            tags={"search_id": plan.search_id, "model": plan.model.name, "variant": plan.variant,
                                  "method": plan.method, "sampled": ",".join(sorted(hparams)), **(extra_tags or {})})
    run = with_values(plan.base, hparams)  # every setting of the run, fixed and sampled, as the train config names it
    tracker.log_params(ref, {"model": run["model"], "data": run["data"], "method": run["method"], "train": run["train"],
                             "eval": {"every": run["eval"].get("every")}, "search_id": plan.search_id,
                             "variant": plan.variant})
    return ref


def experiment_description(spec: Any) -> str:
    """The MLflow experiment's description (markdown, shown above its runs): what the sweep is and optimises."""
    lines = [f"**{spec.name}**: {spec.description}" if spec.description else f"**{spec.name}**", "",
             "objectives: " + ", ".join(f"{o.name} ({o.mode}{', log scale: see ' + o.name + '_log10' if o.scale == 'log' else ''})"
                                        for o in spec.objectives)]
    if spec.constraints:
        lines.append("constraints: " + "; ".join(str(c) for c in spec.constraints))
    require = getattr(getattr(spec, "select", None), "require", None)
    if require:
        lines.append("knee chosen among points with: " + "; ".join(str(c) for c in require))
    lines += ["", "One child run per trial (step = optimizer step, `epoch` beside; step 0 = the target model). "
              f"`unlearn-sweep pareto {spec.sweep_dir()}` prints the front; `unlearn-sweep report` draws it."]
    return "\n".join(lines)


DETAIL_PREFIX = "z_detail/"  # sorts after the objectives' names (MLflow allows letters, digits, _ - . / : space)
PLAIN_METRICS = ("epoch", "trial_wall_seconds")


def mlflow_metrics(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> dict[str, Any]:
    """A point's metrics as logged to MLflow, in this order: the objectives, `<objective>_log10` of the log-scale
    ones, `epoch`, then every other metric under DETAIL_PREFIX (MLflow keeps the order of a run's first batch)."""
    tracked = tracked_metrics(metrics, objectives)
    names = [o.name for o in objectives] + [f"{o.name}_log10" for o in objectives if o.scale == "log"]
    out = {k: tracked[k] for k in (*names, *PLAIN_METRICS) if k in tracked}
    for k, v in tracked.items():
        if k not in out:
            out[k if k.startswith(DETAIL_PREFIX) else DETAIL_PREFIX + k] = v
    return out


def from_mlflow(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A run's MLflow metrics under the evaluation's own names (sweeps logged before the prefix, or after)."""
    return {k[len(DETAIL_PREFIX):] if k.startswith(DETAIL_PREFIX) else k: v for k, v in metrics.items()}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def trial_note(metrics: Mapping[str, Any], objectives: Sequence[Objective], epoch: Any = None,
               hparams: Mapping[str, Any] | None = None) -> str:
    """A trial run's description: its objectives at its latest evaluation, then its sampled hyperparameters."""
    parts = []
    for o in objectives:
        v = metrics.get(o.name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        parts.append(f"**{o.name}** {_fmt(v) if ok else 'missing'} ({o.mode})")
    head = " · ".join(parts) + (f" at epoch {epoch_label(epoch)}" if epoch is not None else "")
    if hparams:
        head += "\n\n" + ", ".join(f"{k} = {_fmt(v) if isinstance(v, float) else v}" for k, v in sorted(hparams.items()))
    return head


def searched_param_names(hparams: Sequence[str]) -> list[str]:
    """The MLflow param names (train-config paths, `train.lr`) of sampled hyperparameters (`lr`)."""
    from unlearning.train.fields import resolve

    out = []
    for name in hparams:
        try:
            out.append(".".join(resolve(name)))
        except Exception:  # noqa: BLE001 - a name the config does not know is shown as sampled
            out.append(name)
    return list(dict.fromkeys(out))


def objectives_view(objectives: Sequence[Objective], searched: Sequence[str]) -> dict[str, Any]:
    """MLflow's experiment-page view state (what its "Share" button stores): the trials flat (the parent
    left out), the objectives and the searched hyperparameters as the columns, sorted by the first objective."""
    cols = [f"metrics.`{o.name}`" for o in objectives] + [f"params.`{p}`" for p in searched]
    view: dict[str, Any] = {"searchFilter": "tags.run_role = 'trial'", "selectedColumns": cols, "columnOrder": cols}
    if objectives:
        view.update(orderByKey=f"metrics.`{objectives[0].name}`", orderByAsc=objectives[0].mode == "min")
    return view


def describe_sweep(tracker: Tracker, parent: RunRef, objectives: Sequence[Objective], hparams: Sequence[str]) -> None:
    """The parent run's description (the objectives, the searched hyperparameters) and the experiment's
    objectives view and tags (see the module docstring)."""
    searched = searched_param_names(hparams)
    note = ("objectives: " + ", ".join(f"**{o.label}**" for o in objectives)
            + ("\n\nsearched: " + ", ".join(searched) if searched else "")
            + "\n\nEach trial's run (its description: its objectives' latest values); `unlearn-sweep ui` prints "
              "the page of every trial with the objectives as columns.")
    tracker.set_tags(parent, {NOTE_TAG: note})

    def op() -> None:
        exp = tracker._experiment()
        tracker.client.set_experiment_tag(exp, VIEW_TAG, json.dumps(objectives_view(objectives, searched)))
        tracker.client.set_experiment_tag(exp, OBJECTIVES_TAG, ",".join(o.name for o in objectives))

    tracker._submit("the experiment's objectives view", op)


def log_point(tracker: Tracker, ref: RunRef, point: Point, objectives: Sequence[Objective] = ()) -> None:
    """One evaluation point's metrics at its MLflow step (the trial's optimizer step), `epoch` beside them; once
    per step: a trial resumed from a checkpoint older than its last report (the driver stopped between the report
    and Tune's next state snapshot) reports that point again, and MLflow keeps the first."""
    step = point.step if point.step is not None else int(point.epoch)
    metrics = mlflow_metrics({**{k: v for k, v in point.metrics.items() if v is not None}, "epoch": point.epoch},
                             objectives)
    tracker.log_metrics(ref, metrics, step=step, once_key="epoch")
    if objectives:
        tracker.set_tags(ref, {NOTE_TAG: trial_note(point.metrics, objectives, point.epoch, point.hparams)})


def log_target_point(tracker: Tracker, ref: RunRef, target_metrics: Mapping[str, Any] | None,
                     objectives: Sequence[Objective] = ()) -> None:
    """The target model's evaluation as the run's step 0 (epoch 0), so its charts start where unlearning did."""
    metrics = {k: float(v) for k, v in (target_metrics or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if metrics:
        tracker.log_metrics(ref, mlflow_metrics({**metrics, "epoch": 0}, objectives), step=0, once_key="epoch")


class SweepRecorder(Callback):
    """Records the trials of every search of a sweep (see the module docstring); a trial's search is the one
    named in its config (`config[SWEEP_KEY]["search_id"]`), `searches` maps it to (plan, target metrics)."""

    def __init__(self, searches: Mapping[str, tuple[Any, Mapping[str, Any] | None]], tracker: Tracker,
                 parent: RunRef, results: ResultsLog, objectives: Sequence[Objective] = ()):
        self.searches = {sid: (plan, dict(target or {})) for sid, (plan, target) in searches.items()}
        self.tracker, self.parent, self.results = tracker, parent, results
        self.objectives = list(objectives)
        self._runs: dict[str, RunRef] = {}
        self._failed: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self.timings: dict[str, tuple[float, float]] = {}  # trial -> (driver wall s, work s inside the trial)
        self._work: dict[str, float] = {}
        self._described = False

    def _search(self, trial: Any) -> tuple[Any, dict[str, Any]]:
        """(plan, target metrics) of the trial's search."""
        return self.searches[trial.config[SWEEP_KEY]["search_id"]]

    def _run(self, trial: Any) -> RunRef:
        tid = trial.trial_id
        if tid not in self._runs:
            plan, target = self._search(trial)
            if not self._described:  # once, with the first trial's sampled names (every search samples the same)
                self._described = True
                describe_sweep(self.tracker, self.parent, self.objectives, sorted(sampled_params(trial.config)))
            self._runs[tid] = open_trial_run(self.tracker, self.parent, plan, tid, sampled_params(trial.config),
                                             extra_tags={"ray_trial_name": str(trial)})
            log_target_point(self.tracker, self._runs[tid], target, self.objectives)
        return self._runs[tid]

    def _status(self, trial: Any, status: str, reason: str | None = None) -> None:
        plan, _ = self._search(trial)
        if trial.trial_id not in self._runs:  # points.jsonl names the trial before MLflow has a run for it: a
            # driver killed in between leaves a trial that `resume` closes as lost in both, not an MLflow run
            # that no results line knows
            self.results.trial(trial.trial_id, status, search_id=plan.search_id, model=plan.model.name,
                               variant=plan.variant, reason=reason, hparams=sampled_params(trial.config))
        ref = self._run(trial)
        wall, work = self.timings.get(trial.trial_id, (None, None)) if status == "finished" else (None, None)
        self.results.trial(trial.trial_id, status, search_id=plan.search_id, model=plan.model.name,
                           variant=plan.variant, reason=reason, hparams=sampled_params(trial.config),
                           mlflow_run_id=ref.run_id, wall_s=wall, work_s=work)
        if ACTIVE_PROGRESS is not None:
            ACTIVE_PROGRESS.trial(trial.trial_id, status, reason, search_id=plan.search_id)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started.setdefault(trial.trial_id, time.time())
        try:
            self._status(trial, "running")
            self.tracker.mark_running(self._run(trial))  # a resumed trial's run was closed as KILLED
        except Exception as exc:  # noqa: BLE001 - recording must never stop the sweep
            log.warning("could not record the start of trial %s: %s", trial.trial_id, exc)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        try:
            ref = self._run(trial)
            if result.get(FAILED_KEY):
                self._failed[trial.trial_id] = str(result.get("failure_reason", "trial failed"))
                return
            epoch = epoch_label(result.get("epoch", result.get("training_iteration", 0)))
            step = int(result.get("step", epoch))  # MLflow steps are the trial's optimizer steps
            if "trial_seconds" in result:
                self._work[trial.trial_id] = float(result["trial_seconds"])
            if result.get("node_id") and epoch == 1:  # where the trial ran (the Ray node id)
                self.tracker.set_tags(ref, {"ray_node_id": result["node_id"]})
            plan, _ = self._search(trial)
            point = Point(trial_id=trial.trial_id, epoch=epoch, step=step, metrics=numeric_metrics(result),
                          hparams=sampled_params(trial.config), search_id=plan.search_id,
                          model=plan.model.name, variant=plan.variant, mlflow_run_id=ref.run_id,
                          checkpoint=result.get("checkpoint_dir_name"))
            log_point(self.tracker, ref, point, self.objectives)
            self.results.point(point)
            metrics = point.metrics
            if ACTIVE_PROGRESS is not None:
                ACTIVE_PROGRESS.point(trial.trial_id, epoch, metrics, search_id=plan.search_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record a result of trial %s: %s", trial.trial_id, exc)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            reason = self._failed.get(trial.trial_id)
            ref = self._run(trial)
            if trial.trial_id in self._started and trial.trial_id in self._work:
                wall = time.time() - self._started[trial.trial_id]
                self.timings[trial.trial_id] = (wall, self._work[trial.trial_id])
                self.tracker.log_metrics(ref, {"trial_wall_seconds": wall}, step=0)
            self._attach_artifacts(trial, ref)
            self.tracker.end_run(ref, "FAILED" if reason else "FINISHED", reason=reason)
            self._status(trial, "failed" if reason else "finished", reason)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record the end of trial %s: %s", trial.trial_id, exc)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            reason = _error_text(trial)
            ref = self._run(trial)
            self.tracker.end_run(ref, "FAILED", reason=reason)
            self._status(trial, "failed", reason)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record the error of trial %s: %s", trial.trial_id, exc)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.tracker.flush()

    def _attach_artifacts(self, trial: Any, ref: RunRef) -> None:
        from pathlib import Path

        out = Path(trial.config[SWEEP_KEY]["sweep_dir"]) / "trials" / trial.trial_id
        for name, artifact_dir in (("config.yaml", "config"), ("result.json", "eval")):
            if (out / name).is_file():
                self.tracker.log_artifact(ref, out / name, artifact_dir)


def _error_text(trial: Any) -> str:
    """The last line of a trial's error (Tune keeps the traceback in the trial's error file)."""
    text = ""
    try:
        path = getattr(trial, "error_file", None) or getattr(getattr(trial, "run_metadata", None), "error_filename", None)
        if path:
            from pathlib import Path

            text = Path(path).read_text()
    except Exception:  # noqa: BLE001
        pass
    if not text:
        text = str(getattr(trial, "error_msg", "") or "trial raised an error")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "trial raised an error"
