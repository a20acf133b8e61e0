"""A small finished sweep for the report tests: two models x two BalDRO variants, several epochs per trial,
three objectives (forget_quality max log, model_utility max, gibberish_rate min) and the preset's
constraint model_utility >= 0.9 * target (the target = each model's epoch-0 evaluation).

The Pareto statuses below were worked out by hand (minimisation space: -log10 fq, -mu, gib):

  tofu-mini/target (target fq 1e-6, mu 0.60 -> constraint mu >= 0.54)
    A-dv1:1 (3, -.59, .05)  A-dv1:2 (1, -.58, .10)  A-dv2:1 (4, -.60, .02)  A-dv2:2 (2, -.585, .04): no point
        is better on all three -> Pareto
    A-np1:1 (3, -.55, .10) is dominated by A-dv1:1; A-np1:2 (1.70, -.56, .20) by A-dv1:2
    A-dv1:3 mu 0.50 < 0.54 -> infeasible;  A-np2:1 fq NaN -> missing (not drawn)
  tofu-mini-tiny/target (target fq 1e-5, mu 0.40 -> constraint mu >= 0.36)
    B-dv1:1 (2, -.39, .10)  B-dv1:2 (1.30, -.37, .15)  B-np1:1 (3, -.38, .05) -> Pareto
    B-np1:2 (2, -.38, .12) is dominated by B-dv1:1;  B-np1:3 mu 0.30 < 0.36 -> infeasible
  every epoch-0 point -> before unlearning
"""

from __future__ import annotations

import shutil
from pathlib import Path

MODEL_A, MODEL_B = "tofu-mini/target", "tofu-mini-tiny/target"
TARGET_A, TARGET_B = (1e-6, 0.60, 0.0), (1e-5, 0.40, 0.0)
# trial -> (model, variant, hyperparameters, [(fq, mu, gib) at epoch 0, 1, ...])
TRIALS = {
    "A-dv1": (MODEL_A, "dv", {"lr": 1e-3, "epochs": 3, "beta_dv": 2.0},
              [TARGET_A, (1e-3, 0.59, 0.05), (1e-1, 0.58, 0.10), (0.3, 0.50, 0.30)]),
    "A-dv2": (MODEL_A, "dv", {"lr": 2e-4, "epochs": 2, "beta_dv": 0.7},
              [TARGET_A, (1e-4, 0.60, 0.02), (1e-2, 0.585, 0.04)]),
    "A-np1": (MODEL_A, "none", {"lr": 1e-3, "epochs": 2}, [TARGET_A, (1e-3, 0.55, 0.10), (2e-2, 0.56, 0.20)]),
    "A-np2": (MODEL_A, "none", {"lr": 3e-3, "epochs": 3}, [TARGET_A, (None, 0.2, 0.5)]),
    "B-dv1": (MODEL_B, "dv", {"lr": 5e-4, "epochs": 2, "beta_dv": 5.0},
              [TARGET_B, (1e-2, 0.39, 0.10), (5e-2, 0.37, 0.15)]),
    "B-np1": (MODEL_B, "none", {"lr": 2e-3, "epochs": 3},
              [TARGET_B, (1e-3, 0.38, 0.05), (1e-2, 0.38, 0.12), (1e-1, 0.30, 0.40)]),
}
PARETO = {MODEL_A: {"A-dv1:1", "A-dv1:2", "A-dv2:1", "A-dv2:2"}, MODEL_B: {"B-dv1:1", "B-dv1:2", "B-np1:1"}}
DOMINATED = {"A-np1:1", "A-np1:2", "B-np1:2"}
INFEASIBLE = {"A-dv1:3", "B-np1:3"}
MISSING = {"A-np2:1"}
BEFORE = {f"{t}:0" for t in TRIALS}
N_POINTS = 19   # 12 of model A + 7 of model B
N_PLOTTED = 18  # all but A-np2:1
EXPERIMENT = "unlearn/tofu-mini"
FQ_PARA = "forget_Q_A_PARA_Prob"  # an intermediate metric that sorts before the objectives


def make_spec(storage: Path):
    from sweeps.spec import load_spec, parse_spec

    raw = load_spec("tofu-mini", check_models=False).raw()
    raw.update(name="report-test", storage=str(storage), models=[MODEL_A, MODEL_B])
    raw["search_space"] = {"lr": {"low": 1e-4, "high": 3e-3, "log": True}, "epochs": [2, 3],  # the trials' own
                           "beta_dv": {"low": 0.5, "high": 5.0, "log": True}}                # (epochs sampled)
    raw["fixed"].pop("epochs", None)
    return parse_spec(raw)


def write_sweep(tmp_path: Path, mlflow_template: Path | None = None, trials: dict | None = None):
    """(spec, sweep_dir, run_ids). With an MLflow template database: copied to <sweep>/mlflow.db, the sweep's
    parent run and one child run per trial (its hyperparameters under their train-config names, its points per
    epoch: the objectives and an intermediate metric, FQ_PARA, that the evaluation lists first; ended) created with
    `Tracker` and logged as the recorder logs them (`log_point`, `describe_sweep`), their ids written into the
    points."""
    from sweeps.recording.results import Point, ResultsLog, write_spec_copy

    trials = TRIALS if trials is None else trials
    spec = make_spec(tmp_path / "runs")
    sweep_dir = spec.sweep_dir()
    write_spec_copy(spec, sweep_dir)
    run_ids = {t: f"run-{t}" for t in trials}
    if mlflow_template is not None:
        from sweeps.recording.recorder import describe_sweep, log_point
        from sweeps.recording.tracking import Tracker
        from unlearning.train.fields import resolve

        shutil.copy(mlflow_template, sweep_dir / "mlflow.db")
        tracker = Tracker(spec.tracking_uri(), spec.experiment_name())
        parent = tracker.parent_run(spec.name, name=spec.name)
        describe_sweep(tracker, parent, spec.objectives, sorted({k for _, _, hp, _ in trials.values() for k in hp}))
        run_ids = {}
        for t, (_, _, hp, evals) in trials.items():   # each trial's run: its hyperparameters, its points
            child = tracker.child_run(parent, t, name=f"trial-{t}")
            tracker.log_params(child, {".".join(resolve(k)): v for k, v in hp.items()})   # train.lr, ...
            for epoch, (fq, mu, gib) in enumerate(evals):
                metrics = {FQ_PARA: 0.5 - 0.01 * epoch, "model_utility": mu, "gibberish_rate": gib,
                           **({} if fq is None else {"forget_quality": fq})}
                log_point(tracker, child, Point(trial_id=t, epoch=epoch, step=epoch, metrics=metrics, hparams=hp),
                          spec.objectives)
            tracker.end_run(child, "FAILED" if t == "A-np2" else "FINISHED")
            run_ids[t] = child.run_id
        run_ids["__parent__"] = parent.run_id
        tracker.end_run(parent, "FINISHED")                       # the sweep is over
        assert tracker.flush() and all(run_ids.values())
    log = ResultsLog(sweep_dir)
    for trial, (model, variant, hp, evals) in trials.items():
        search_id = f"{model.replace('/', '-')}.{variant}"
        log.trial(trial, "running", search_id=search_id, model=model, variant=variant, hparams=hp)
        for epoch, (fq, mu, gib) in enumerate(evals):
            log.point(Point(trial_id=trial, epoch=epoch, search_id=search_id, model=model, variant=variant,
                            hparams=hp, mlflow_run_id=run_ids[trial],
                            metrics={"forget_quality": float("nan") if fq is None else fq, "model_utility": mu,
                                     "gibberish_rate": gib}))
        log.trial(trial, "failed" if trial == "A-np2" else "finished", search_id=search_id, model=model,
                  variant=variant, hparams=hp, reason="loss became NaN" if trial == "A-np2" else None)
    return spec, sweep_dir, run_ids
