"""The Tune function trainable of a sweep trial: builds the trial's configs and launches the worker loop.

    tuner = ray.tune.Tuner(ray.tune.with_resources(run_trial, trial_resources(spec)), param_space=...)

`config` holds the sampled hyperparameters plus one constant entry `_sweep` (see `sweep_constants`): the
spec (as a dict), the search id, the sweep folder and the retain reference the driver prepared.

* Single-worker CPU trials call `unlearning_loop_per_worker` directly in this process (no Ray Train: it
  costs 12-22 s per trial on 2 cores) and report with `ray.tune.report`.
* Trials with more than one worker or a GPU build a Ray Train V2 `TorchTrainer` around the same function
  (the V2 pattern: this Tune function is the driver; `TuneReportCallback` forwards rank 0's reports), named
  `train-<trial id>` so a retried trial resumes its Train run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from trainables.worker_loop import unlearning_loop_per_worker

SWEEP_KEY = "_sweep"
DRIVER_CPU = 0.01  # a Train-driving trial holds almost no CPU itself (0 is refused by Ray)


def sweep_constants(spec: Any, search_id: str, reference: str | None) -> dict[str, Any]:
    return {"spec": spec.raw(), "spec_source": spec.source_path, "search_id": search_id,
            "sweep_dir": str(spec.sweep_dir()), "reference": reference}


def uses_ray_train(resources: Any) -> bool:
    return resources.workers > 1 or resources.gpus > 0


def trial_resources(resources: Any) -> dict[str, float]:
    """What the Tune trial itself reserves: the whole worker when it runs in-process, a sliver when it only
    drives a TorchTrainer (whose workers reserve their own CPUs/GPUs)."""
    if uses_ray_train(resources):
        return {"cpu": DRIVER_CPU}
    return {"cpu": resources.cpus}


def worker_config(config: Mapping[str, Any], trial_id: str) -> tuple[dict[str, Any], Any]:
    """The worker loop's config for this trial (+ the parsed spec)."""
    from sweeps.spec import parse_spec
    from sweeps.trial_config import train_config

    const = config[SWEEP_KEY]
    spec = parse_spec(const["spec"], where=const.get("spec_source") or "sweep spec", source=const.get("spec_source"))
    plan = spec.plan(const["search_id"])
    sampled = {k: v for k, v in config.items() if k != SWEEP_KEY}
    out_dir = Path(const["sweep_dir"]) / "trials" / trial_id
    train = train_config(spec, plan, sampled, output_dir=str(out_dir))
    settings = train["eval"]["settings"]
    if const.get("reference"):  # the retain statistics the driver computed once for this search
        settings.pop("retain_model", None)
        settings["retain_logs"] = const["reference"]
    worker = {"train": train,
              "threads": max(1, int(spec.resources.cpus)),
              "log_metrics": [o.name for o in spec.objectives if o.scale == "log"],
              "objective_keys": [f"log10_{o.name}" if o.scale == "log" else o.name for o in spec.objectives]}
    return worker, spec


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one sweep trial (see the module docstring)."""
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    worker, spec = worker_config(config, trial_id)
    res = spec.resources
    if not uses_ray_train(res):
        unlearning_loop_per_worker({**worker, "report_to": "tune"})
        return

    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    per_worker = {"CPU": res.cpus, **({"GPU": res.gpus} if res.gpus else {})}
    trainer = TorchTrainer(
        unlearning_loop_per_worker,
        train_loop_config={**worker, "report_to": "train"},
        scaling_config=ray.train.ScalingConfig(num_workers=res.workers, use_gpu=res.gpus > 0,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}", storage_path=str(Path(worker["train"]["output_dir"]).parent.parent / "ray_train"),
            failure_config=ray.train.FailureConfig(max_failures=spec.budget.max_failures),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
