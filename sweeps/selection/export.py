"""Export chosen sweep points as `unlearn-sweep train` configs for the final runs.

    from sweeps.selection.export import export
    paths = export(results, "knee", "final/", spec)             # the knee of each model's front
    paths = export(results, "pareto", "final/", spec)           # every point of every front
    paths = export(results, "a1b2_00003:2", "final/", spec)     # trial a1b2_00003 after epoch 2
    paths = export(results, "a1b2_00003", "final/", spec)       # that trial's last evaluated epoch

Each file `<out>/<search_id>__<trial_id>__e<epoch>.yaml` holds:
* the train config that `unlearn-sweep train FILE` runs: the search's base config with the trial's sampled
  values merged in (exactly the object the trial ran, nothing re-derived), with the chosen epoch;
* `provenance:` what the point was and where it came from: sweep, search, trial, epoch, its objective
  values, MLflow run id, checkpoint, the library versions and topology of the sweep, the retain reference,
  and `open_unlearning_command`, the equivalent open-unlearning run for hub models (also written as a comment
  on top; for the embedded zoo it says there is none).

Epochs: a point at an earlier epoch k of a longer trial (k may be a fraction with `eval.every` < 1, e.g.
TRIAL:1.5) is exported with the trial's epoch count and `train.stop_after_epoch: k`, so warmup and
learning-rate decay follow the trial's schedule and the run stops at the very optimizer step the point was
evaluated at (`unlearning.train.schedule`): it replays the point exactly (a fresh k-epoch run would decay its
learning rate faster).
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from sweeps.selection.pareto import sweep_fronts
from sweeps.recording.results import Point, Results
from unlearning.errors import ConfigError
from unlearning.train.fields import with_values
from unlearning.train.schedule import epoch_label

LIBRARIES = ("torch", "transformers", "deepspeed", "ray", "optuna", "mlflow")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that change numbers (read from package metadata, no imports)."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# --------------------------------------------------------------------------------------------------
# choosing points


def _trial_points(results: Results, trial_id: str) -> list[Point]:
    return sorted((p for p in results.points if p.trial_id == trial_id), key=lambda p: p.epoch)


def choose(results: Results, pick: str, spec) -> list[tuple[Point, str]]:
    """(point, why) for a pick: knee | pareto | TRIAL_ID | TRIAL_ID:EPOCH (comma-separate several)."""
    chosen: list[tuple[Point, str]] = []
    for part in [p.strip() for p in str(pick).split(",") if p.strip()]:
        if part in ("knee", "pareto"):
            fronts = sweep_fronts(spec, results)
            if not any(f.front for f in fronts.values()):
                raise ConfigError("export", field="pick", value=part,
                                  fix="no feasible evaluated point yet: wait for trials to finish, or pick a trial id")
            for model, front in fronts.items():
                if part == "knee" and front.knee is not None:
                    chosen.append((front.knee, f"knee of the Pareto front of {model}"))
                elif part == "pareto":
                    chosen += [(p, f"Pareto front of {model}") for p in front.front]
            continue
        m = re.fullmatch(r"(.+?)(?::(\d+(?:\.\d+)?))?", part)
        trial_id, epoch = m.group(1), m.group(2)
        pts = _trial_points(results, trial_id)
        if not pts:
            known = sorted({p.trial_id for p in results.points})
            raise ConfigError("export", field="pick", value=part,
                              fix=f"no evaluated trial '{trial_id}'; use knee, pareto or one of {known[:10]}")
        if epoch is None:
            chosen.append((pts[-1], f"trial {trial_id}, last evaluated epoch"))
            continue
        match = [p for p in pts if p.epoch == epoch_label(float(epoch))]
        if not match:
            raise ConfigError("export", field="pick", value=part,
                              fix=f"trial {trial_id} was evaluated at epochs {[p.epoch for p in pts]}")
        chosen.append((match[0], f"trial {trial_id}, epoch {epoch}"))
    if not chosen:
        raise ConfigError("export", field="pick", value=pick, fix="use knee, pareto, TRIAL_ID or TRIAL_ID:EPOCH")
    unique: dict[tuple[str, int], tuple[Point, str]] = {}
    for p, why in chosen:
        unique.setdefault(p.key, (p, why))
    return list(unique.values())


def plan_for(spec, point: Point):
    """The search plan a point belongs to (by search_id, else by model and variant)."""
    for plan in spec.searches():
        if plan.search_id == point.search_id or (plan.model.name == point.model and plan.variant == point.variant):
            return plan
    raise ConfigError("export", field="search_id", value=point.search_id or f"{point.model}/{point.variant}",
                      fix=f"the spec's searches are {[p.search_id for p in spec.searches()]}: export with the spec "
                          "the sweep ran with (its folder's spec.yaml)")


# --------------------------------------------------------------------------------------------------
# open-unlearning command line

# canonical name -> open-unlearning Hydra key (train arguments)
OU_TRAIN_ARGS = {
    "lr": "trainer.args.learning_rate", "epochs": "trainer.args.num_train_epochs",
    "batch_size": "trainer.args.per_device_train_batch_size",
    "grad_accum": "trainer.args.gradient_accumulation_steps", "warmup_epochs": "trainer.args.warmup_epochs",
    "weight_decay": "trainer.args.weight_decay", "max_grad_norm": "trainer.args.max_grad_norm",
    "lr_scheduler": "trainer.args.lr_scheduler_type", "seed": "trainer.args.seed",
}
# reference classes that call beta_dv sigma_forget (docs/methods.md); the others say beta_dv_forget
SIGMA_NAMES = {"SimNPO", "SatImp"}
# our own options that the reference trainers do not have (left out of the line)
NOT_IN_REFERENCE = {"dv_mode", "unit", "retain_reduction", "detach_weights", "form", "faithful_ignore_index",
                    "eps", "clamp_layer", "target_token_ids"}


def reference_method_args(method: str, variant: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Our canonical method hyperparameters under the reference trainers' names (BalDRO's naming split)."""
    sigma = method in SIGMA_NAMES
    rename = {"beta_dv": "sigma_forget" if sigma else "beta_dv_forget",
              "beta_dv_retain": "sigma_retain" if sigma else "beta_dv_retain",
              "group_ratio": "sampling_ratio", "layer": "layer_id" if method == "RMU" else "layer"}
    out = {}
    for key, value in hparams.items():
        if key in NOT_IN_REFERENCE:
            continue
        out[rename.get(key, key)] = value
    return out


def _hydra_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if v is None:
        return "null"
    text = str(v)
    return f"'{text}'" if re.search(r"[\s,=\[\]{}]", text) else text


def open_unlearning_command(spec, plan, cfg: Mapping[str, Any], task_name: str) -> str:
    """The equivalent `python src/train.py ...` of open-unlearning / BalDRO for this config, or why there is none
    (the embedded zoo's models and data are not on the hub): the benchmark's own arguments
    (`Benchmark.open_unlearning_args`), then the loop's and the method's."""
    from sweeps.spec import variant_label
    from unlearning.benchmarks.base import NotExportable

    try:
        parts = spec.benchmark.open_unlearning_args(spec.data, plan.model, variant_label(plan.method, plan.variant),
                                                    task_name)
    except NotExportable as exc:
        return f"none: {exc}"
    for key, hydra in OU_TRAIN_ARGS.items():
        if key in cfg["train"]:
            parts.append(f"{hydra}={_hydra_value(cfg['train'][key])}")
    args = reference_method_args(plan.method, plan.variant, cfg["method"]["hparams"])
    return " ".join(parts + [f"trainer.method_args.{k}={_hydra_value(v)}" for k, v in args.items()])


# --------------------------------------------------------------------------------------------------
# writing


def _epoch_fields(trial_epochs: int, chosen: int | float) -> tuple[dict[str, Any], str]:
    """An earlier epoch replays exactly: the trial's schedule (warmup, decay over all its epochs), stopped."""
    if chosen == trial_epochs:
        return {"epochs": chosen}, "exact: the trial's full run"
    return {"epochs": trial_epochs, "stop_after_epoch": chosen}, \
        f"exact: the trial's {trial_epochs}-epoch schedule, stopped after epoch {chosen}"


def export_config(spec, point: Point, why: str, results: Results, versions: Mapping[str, str],
                  out_dir: str | Path) -> tuple[dict[str, Any], str]:
    """(the YAML document as a dict, its header comment) for one point."""
    plan = plan_for(spec, point)
    sampled = {k: v for k, v in point.hparams.items() if k in plan.space.params}
    task = f"{spec.name}__{plan.search_id}__{point.trial_id}__e{point.epoch}"
    cfg = with_values(plan.base, sampled)  # exactly what the trial ran: the search's base + its sampled values
    cfg["output_dir"] = str(Path(out_dir) / "runs" / task)
    trial_epochs = max(int(cfg["train"]["epochs"]), math.ceil(point.epoch))  # what the trial was scheduled for
    fields, replay = _epoch_fields(trial_epochs, point.epoch)
    cfg["train"].update(fields)
    command = open_unlearning_command(spec, plan, cfg, task)
    objectives = {o.name: point.metrics.get(o.name) for o in spec.objectives}
    cfg["provenance"] = {
        "sweep": spec.name, "spec": spec.source_path, "search_id": plan.search_id, "method": plan.label,
        "trial_id": point.trial_id, "epoch": point.epoch, "trial_epochs": trial_epochs, "pick": why,
        "replay": replay, "objectives": objectives, "metrics": dict(point.metrics),
        "sampled": dict(point.hparams), "mlflow_run_id": point.mlflow_run_id, "checkpoint": point.checkpoint,
        "retain_model": plan.model.retain_model, "retain_logs": plan.model.retain_logs,
        "versions": dict(versions),
        "topology": {"workers": spec.resources.workers, "cpus_per_worker": spec.resources.cpus,
                     "gpus_per_worker": spec.resources.gpus, "engine": cfg["train"]["engine"],
                     "zero_stage": cfg["train"]["zero_stage"], "dtype": cfg["model"]["dtype"]},
        "open_unlearning_command": command,
    }
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in objectives.items())
    header = "\n".join([
        "# unlearn-sweep train {path}",
        f"# {plan.label} on {plan.model.name}: trial {point.trial_id}, epoch {point.epoch} ({why}); {shown}",
        f"# replay: {replay}",
        "# open-unlearning equivalent:",
        f"#   {command}",
    ])
    return cfg, header


def export(points: Results | Sequence[Point], picks: str, out_dir: str | Path, spec,
           versions: Mapping[str, str] | None = None) -> list[Path]:
    """Write one YAML per chosen point into ``out_dir``; returns the paths (see the module docstring).

    Each train part is validated with the train config's own parser before it is written."""
    results = points if isinstance(points, Results) else Results(points=list(points))
    versions = dict(versions) if versions is not None else library_versions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for point, why in choose(results, picks, spec):
        cfg, header = export_config(spec, point, why, results, versions, out)
        _validate(cfg)
        path = out / f"{plan_for(spec, point).search_id}__{point.trial_id}__e{point.epoch}.yaml"
        body = yaml.safe_dump(cfg, sort_keys=False, width=10_000)
        path.write_text(header.format(path=path) + "\n" + body, encoding="utf-8")
        written.append(path)
    return written


def _validate(cfg: Mapping[str, Any]) -> None:
    from unlearning.train.config import TrainConfig, parse_train_config

    data = dict(cfg)
    if "provenance" not in TrainConfig.model_fields:
        data.pop("provenance", None)
    parse_train_config(data, where="exported train config")
