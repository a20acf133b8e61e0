"""The Tune function trainable of a sweep trial: the search's base train config + the sampled values -> one run.

    tuner = ray.tune.Tuner(ray.tune.with_resources(run_trial, trial_resources(resources)),
                           param_space={SWEEP_KEY: sweep_constants(...), **searched_dimensions})

`config` holds the sampled values (train-config field names: `lr`, `epochs`, `beta_dv`, ...) plus one constant
entry `_sweep`: the search's complete base train config (built and validated once by the driver), the sweep
folder, the retain reference and the shared inputs the driver prepared, and the trial's resources. The trial
merges the sampled values into the base config (`unlearning.train.fields.with_values`) and validates the result
once, as a `unlearn-sweep train` config: nothing of the sweep spec is read here.

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


def sweep_constants(base: Mapping[str, Any], *, search_id: str, sweep_dir: str, reference: str | None,
                    inputs_cache: str | None, resources: Mapping[str, Any], objective_names: list[str]) -> dict:
    """The constant part of every trial's config of one search (see the module docstring)."""
    return {"base": dict(base), "search_id": search_id, "sweep_dir": str(sweep_dir), "reference": reference,
            "inputs_cache": inputs_cache, "resources": dict(resources), "objective_names": list(objective_names)}


def uses_ray_train(resources: Mapping[str, Any]) -> bool:
    return resources["workers"] > 1 or resources["gpus"] > 0


def trial_resources(resources: Mapping[str, Any]) -> dict[str, float]:
    """What the Tune trial itself reserves: the whole worker when it runs in-process, a sliver when it only
    drives a TorchTrainer (whose workers reserve their own CPUs/GPUs)."""
    if uses_ray_train(resources):
        return {"cpu": DRIVER_CPU}
    return {"cpu": resources["cpus"]}


def trial_train_config(config: Mapping[str, Any], trial_id: str) -> dict[str, Any]:
    """The trial's train config: the base + its sampled values, its own output folder, the driver's retain
    reference (statistics computed once) in place of the retain model."""
    from unlearning.train.fields import with_values

    const = config[SWEEP_KEY]
    sampled = {k: v for k, v in config.items() if k != SWEEP_KEY}
    train = with_values(const["base"], sampled)
    train["output_dir"] = str(Path(const["sweep_dir"]) / "trials" / trial_id)
    if const.get("reference"):
        settings = train["eval"]["settings"]
        settings.pop("retain_model", None)
        settings["retain_logs"] = const["reference"]
    return train


def worker_config(config: Mapping[str, Any], trial_id: str) -> dict[str, Any]:
    """What `unlearning_loop_per_worker` takes for this trial."""
    const = config[SWEEP_KEY]
    return {"train": trial_train_config(config, trial_id), "threads": max(1, int(const["resources"]["cpus"])),
            "inputs_cache": const.get("inputs_cache"), "objective_names": const["objective_names"]}


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one sweep trial (see the module docstring)."""
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    worker = worker_config(config, trial_id)
    res = config[SWEEP_KEY]["resources"]
    if not uses_ray_train(res):
        unlearning_loop_per_worker({**worker, "report_to": "tune"})
        return

    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    per_worker = {"CPU": res["cpus"], **({"GPU": res["gpus"]} if res["gpus"] else {})}
    trainer = TorchTrainer(
        unlearning_loop_per_worker,
        train_loop_config={**worker, "report_to": "train"},
        scaling_config=ray.train.ScalingConfig(num_workers=res["workers"], use_gpu=res["gpus"] > 0,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}", storage_path=str(Path(worker["train"]["output_dir"]).parent.parent / "ray_train"),
            failure_config=ray.train.FailureConfig(max_failures=res.get("max_failures", 0)),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
