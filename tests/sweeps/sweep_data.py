"""A small finished sweep of the default preset, written by the tests that read sweep results (pareto,
export, the CLI). Two objectives keep the hand computations in the tests short."""

from __future__ import annotations

# trial -> (variant, sampled hyperparameters, [(forget_quality, model_utility) at epochs 0, 1, 2, ...])
TARGET = (1e-6, 0.60)  # epoch 0 = the target model before unlearning
TRIALS = {
    "dv1": ("dv", {"lr": 1e-3, "epochs": 3, "beta_dv": 2.0}, [TARGET, (1e-3, 0.59), (1e-1, 0.57), (0.3, 0.50)]),
    "dv2": ("dv", {"lr": 2e-4, "epochs": 2, "beta_dv": 0.7}, [TARGET, (1e-4, 0.60), (1e-2, 0.585)]),
    "np1": ("none", {"lr": 1e-3, "epochs": 2}, [TARGET, (1e-3, 0.55), (2e-2, 0.56)]),
    "np2": ("none", {"lr": 3e-3, "epochs": 3}, [TARGET, (None, 0.2)]),
}


def write_finished_sweep(tmp_path):
    """(spec, sweep_dir) of a sweep folder holding spec.yaml and points.jsonl (np2 failed after epoch 1)."""
    from sweeps.recording.results import Point, ResultsLog, write_spec_copy
    from sweeps.spec import load_spec, parse_spec

    raw = load_spec("tofu-mini", check_models=False).raw()
    raw["storage"] = str(tmp_path / "runs")
    raw["search_space"] = {"lr": {"low": 1e-4, "high": 3e-3, "log": True}, "epochs": [2, 3],  # the trials' own
                           "beta_dv": {"low": 0.5, "high": 5.0, "log": True}}                # (epochs sampled)
    raw["fixed"].pop("epochs", None)
    raw["objectives"] = [{"name": "forget_quality", "mode": "max", "scale": "log"},
                         {"name": "model_utility", "mode": "max"}]
    spec = parse_spec(raw)
    sweep_dir = spec.sweep_dir()
    write_spec_copy(spec, sweep_dir)
    log = ResultsLog(sweep_dir)
    for trial, (variant, hp, evals) in TRIALS.items():
        search_id = f"tofu-mini-target.{variant}"
        log.trial(trial, "running", search_id=search_id, model="tofu-mini/target", variant=variant, hparams=hp)
        for epoch, (fq, mu) in enumerate(evals):
            log.point(Point(trial_id=trial, epoch=epoch, search_id=search_id, model="tofu-mini/target",
                            variant=variant, hparams=hp, mlflow_run_id=f"run-{trial}",
                            metrics={"forget_quality": float("nan") if fq is None else fq, "model_utility": mu,
                                     "forget_Q_A_gibberish_rate": 0.0}))
        failed = trial == "np2"
        log.trial(trial, "failed" if failed else "finished", search_id=search_id, model="tofu-mini/target",
                  variant=variant, reason="loss became NaN at step 3" if failed else None, hparams=hp)
    return spec, sweep_dir
