"""The per-worker loop of a sweep trial: unlearn with the core's loop, evaluate after every epoch, report.

One function, `unlearning_loop_per_worker(config)`, runs in both launch modes (see `trainables/trial.py`); it reports
every evaluation point (`epoch` label, fractions with `eval.every` < 1, and the optimizer `step`):
* called directly inside the Tune function for single-worker CPU trials (reports with `ray.tune.report`);
* as `train_loop_per_worker` of a Ray Train `TorchTrainer` for multi-worker / GPU trials (reports with
  `ray.train.report` on every rank; `TuneReportCallback` forwards rank 0's metrics to Tune).

`config` (built by `trainables.trial.worker_config`): {"train": the trial's `unlearn-sweep train` config
(dict; its `eval.settings` name the retain reference the driver prepared once), "inputs_cache": the folder of
the shared inputs (tokenised data, reference log-probs) the driver prepared once, "objective_names": the raw
metrics the searcher reads, "report_to": "tune" | "train"}. Metrics are reported raw: the searcher and the
scheduler put them on their scale (`sweeps.spec.objectives`).

A NaN loss, a user/data error or running out of memory ends the trial with one last report
`{"trial_failed": 1, "failure_reason": ..., <objectives>: NaN}` (not retried: it would fail the same way; the
sweep goes on and the driver records the trial as failed, its earlier points kept). Any other exception
propagates: Tune retries the trial (`budget.max_failures`) and then records it failed with the error. The loop checkpoints into the trial's output folder at every
epoch end, so a retried or resumed trial (same trial id, same folder) continues where it stopped.

Step-level progress (epoch, step of the total, the phase, an estimate of the end) is never reported to Tune
(every Tune result is an evaluation point to the searcher and the scheduler): rank 0 rewrites
`<output_dir>/progress.json` at a bounded rate instead (`trainables.progress_file`), which the driver's progress
printer reads.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

EPOCH_KEY = "epoch"


def _reporter(report_to: str) -> Callable[[Mapping[str, Any]], None]:
    if report_to == "train":
        import ray.train

        return lambda metrics: ray.train.report(dict(metrics))
    if report_to == "tune":
        import ray.tune

        return lambda metrics: ray.tune.report(dict(metrics))
    if report_to == "none":
        return lambda metrics: None
    raise ValueError(f"report_to must be 'tune', 'train' or 'none', got {report_to!r}")


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - the node id is informative only
        return None


def _world_rank(report_to: str) -> int:
    if report_to != "train":
        return 0
    try:
        import ray.train

        return int(ray.train.get_context().get_world_rank())
    except Exception:  # noqa: BLE001 - outside a Train worker: a single process
        return 0


def progress_file(config: Mapping[str, Any]) -> Any:
    """The trial's progress side channel (`trainables.progress_file`): written by rank 0 only, next to its outputs."""
    from pathlib import Path

    from trainables.progress_file import PROGRESS_NAME, ProgressFile

    return ProgressFile(Path(config["train"]["output_dir"]) / PROGRESS_NAME,
                        enabled=_world_rank(config.get("report_to", "tune")) == 0)


def make_eval_hook_factory(config: Mapping[str, Any], progress: Any = None):
    """A factory `(train_config, bundle) -> hook(model, epoch)` that evaluates at each evaluation point and
    returns the flat metrics (epoch 0, the target model, is evaluated once by the sweep driver instead);
    `progress` (a ProgressFile) is told when an evaluation starts."""

    def factory(train_config: Any, bundle: Any):
        from unlearning.evaluation.config import flat_metrics
        from unlearning.train.run import default_eval_hook_factory

        evaluate = default_eval_hook_factory()(train_config, bundle)
        started, node = time.perf_counter(), _node_id()

        def hook(model: Any, epoch: int | float) -> dict[str, Any] | None:
            if epoch == 0:
                return None
            if progress is not None:
                progress.update(force=True, phase="evaluating", eval_epoch=epoch)
            t0 = time.perf_counter()
            metrics = {k: v for k, v in flat_metrics(evaluate(model, epoch)).items() if v is not None}
            metrics.update({"eval_seconds": time.perf_counter() - t0,
                            "trial_seconds": time.perf_counter() - started, "node_id": node})
            for key in config.get("objective_names", ()):  # not measured at this point (e.g. the relearning
                metrics.setdefault(key, float("nan"))         # attack only at the last one): Tune wants every key
            return metrics

        return hook

    return factory


def failure_report(config: Mapping[str, Any], reason: str, epoch: int | float) -> dict[str, Any]:
    """The last report of a failed trial: the reason, and every objective key present with NaN (Tune requires
    the searched metrics in every result; the searcher marks a non-finite result FAILED, never a best point)."""
    return {"trial_failed": 1, "failure_reason": reason, EPOCH_KEY: epoch,
            **{key: float("nan") for key in config.get("objective_names", ())}}


def unlearning_loop_per_worker(config: dict[str, Any]) -> None:
    """Run one trial's unlearning + per-epoch evaluation on this worker (see the module docstring)."""
    import torch

    from unlearning.errors import UserError
    from unlearning.train.config import parse_train_config
    from unlearning.train.loop import TrainingDiverged
    from unlearning.train.run import run_train

    FINAL_FAILURES = (TrainingDiverged, UserError, MemoryError, torch.cuda.OutOfMemoryError)

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    send = _reporter(config.get("report_to", "tune"))
    reported: list[Mapping[str, Any]] = []

    def report(metrics: Mapping[str, Any]) -> None:
        reported.append(metrics)
        send(metrics)

    train_config = parse_train_config(config["train"], where="trial config")
    progress = progress_file(config)
    progress.update(force=True, phase="setup")
    try:
        result = run_train(train_config, eval_hook_factory=make_eval_hook_factory(config, progress), resume=True,
                           on_eval=report,  # each record carries its epoch label and optimizer step
                           inputs_cache=config.get("inputs_cache"),
                           on_step=progress.step)  # progress goes to the side channel, never to Tune
    except FINAL_FAILURES as exc:  # deterministic: retrying would fail the same way
        last = reported[-1][EPOCH_KEY] if reported else getattr(exc, "epoch", 0)
        progress.update(force=True, phase="failed")
        report(failure_report(config, f"{type(exc).__name__}: {str(exc).splitlines()[0][:400]}", last))
        return
    progress.update(force=True, phase="done", remaining_s=0)
    evals = [e for e in result.get("evals", []) if isinstance(e, Mapping) and e.get(EPOCH_KEY)]
    if not reported and evals:
        # resumed after its last epoch (the driver died before recording the end): report the last
        # evaluation again, from the checkpointed history, so the trial ends with its objectives
        send(evals[-1])
