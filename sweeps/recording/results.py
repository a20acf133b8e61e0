"""The sweep's results file, `<storage>/<name>/points.jsonl`: every evaluated (trial, epoch) point and every
trial's status, appended by the driver as results arrive; read by `pareto`, `export` and `status`.

    from sweeps.recording.results import ResultsLog, read_results, resolve_sweep
    log = ResultsLog(spec.sweep_dir())
    log.trial(trial_id="a1_00000", search_id="tofu-mini-target.dv", status="running", hparams={...})
    log.point(Point(trial_id="a1_00000", epoch=1, search_id=..., model=..., variant="dv",
                    metrics={"forget_quality": 0.01, ...}, hparams={...}, mlflow_run_id="...", checkpoint=None))
    log.trial(trial_id="a1_00000", search_id=..., status="failed", reason="loss became NaN at step 12")
    results = read_results(spec.sweep_dir())       # .points, .trials, .references

Format (version 1): one JSON object per line, its kind in "kind":

    {"kind": "point", "trial_id", "epoch", "step", "search_id", "model", "variant", "metrics": {...},
     "hparams": {...}, "mlflow_run_id", "checkpoint", "time": unix seconds}
    {"kind": "trial", "trial_id", "search_id", "model", "variant", "status": running|finished|failed|interrupted,
     "reason", "hparams", "mlflow_run_id", "time", "wall_s", "work_s" (finished trials: seconds from start to
     end seen by the driver, and inside the trial's own training + evaluation)}
    {"kind": "reference", "model", "role": target|retain, "metrics": {...}, "time"}

Epoch 0 is the evaluation before unlearning (the target model itself). A point written again for the same
(trial_id, epoch) (a retried or resumed trial) replaces the earlier one; the last status of a trial wins.
Lines that cannot be parsed (a driver killed mid-write) are skipped and counted. Non-finite metrics are
written as null.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from unlearning.errors import ConfigError
from unlearning.train.schedule import epoch_label

POINTS_FILE = "points.jsonl"
SPEC_FILE = "spec.yaml"
FORMAT_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")  # interrupted: resumes with `unlearn-sweep resume`


@dataclass
class Point:
    """One evaluated model: a trial after `epoch` epochs (0 = before unlearning; 1.5 = half-way through the
    second epoch when the sweep evaluates every 0.5 epoch)."""

    trial_id: str
    epoch: int | float
    metrics: dict[str, float | None]
    step: int | None = None  # the trial's optimizer step at this point (its MLflow step)
    hparams: dict[str, Any] = field(default_factory=dict)
    search_id: str = ""
    model: str = ""
    variant: str = "none"
    mlflow_run_id: str | None = None
    checkpoint: str | None = None
    time: float = 0.0

    @property
    def key(self) -> tuple[str, int | float]:
        return self.trial_id, self.epoch

    @property
    def label(self) -> str:
        return f"{self.trial_id}:{self.epoch}"


@dataclass
class TrialStatus:
    trial_id: str
    status: str
    search_id: str = ""
    model: str = ""
    variant: str = "none"
    reason: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    time: float = 0.0
    wall_s: float | None = None  # a finished trial: seconds from its start to its end, seen by the driver
    work_s: float | None = None  # ... of which inside its own training + evaluation (model load included)


@dataclass
class Results:
    """Everything read back from points.jsonl (later records replace earlier ones)."""

    points: list[Point] = field(default_factory=list)
    trials: dict[str, TrialStatus] = field(default_factory=dict)
    references: dict[tuple[str, str], dict[str, float | None]] = field(default_factory=dict)
    skipped_lines: int = 0

    def reference(self, model: str, role: str = "target") -> dict[str, float | None]:
        """A model's reference metrics: the stored record, else the epoch-0 points of its trials (the
        evaluation before unlearning is the target model's own), averaged."""
        if (model, role) in self.references:
            return self.references[(model, role)]
        if role != "target":
            return {}
        zero = [p for p in self.points if p.model == model and p.epoch == 0]
        out: dict[str, float | None] = {}
        for key in {k for p in zero for k in p.metrics}:
            vals = [p.metrics[key] for p in zero if finite(p.metrics.get(key))]
            out[key] = sum(vals) / len(vals) if vals else None
        return out


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _clean(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue  # non-scalar evaluator output (lists, dicts) is not an objective
        out[str(k)] = float(v) if math.isfinite(v) else None
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy / torch scalars
        return _jsonable(obj.item())
    return str(obj)


class ResultsLog:
    """Appends records to `<sweep_dir>/points.jsonl` (one write + flush + fsync per line)."""

    def __init__(self, sweep_dir: str | Path):
        self.path = Path(sweep_dir) / POINTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_jsonable(record), sort_keys=False, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def point(self, point: Point) -> None:
        rec = asdict(point)
        rec["metrics"] = _clean(point.metrics)
        rec["time"] = point.time or time.time()
        self._append({"kind": "point", **rec})

    def trial(self, trial_id: str, status: str, *, search_id: str = "", model: str = "", variant: str = "none",
              reason: str | None = None, hparams: Mapping[str, Any] | None = None,
              mlflow_run_id: str | None = None, wall_s: float | None = None,
              work_s: float | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        timing = {k: v for k, v in (("wall_s", wall_s), ("work_s", work_s)) if v is not None}
        self._append({"kind": "trial", "trial_id": trial_id, "status": status, "search_id": search_id,
                      "model": model, "variant": variant, "reason": reason, "hparams": dict(hparams or {}),
                      "mlflow_run_id": mlflow_run_id, "time": time.time(), **timing})

    def reference(self, model: str, role: str, metrics: Mapping[str, Any]) -> None:
        self._append({"kind": "reference", "model": model, "role": role, "metrics": _clean(metrics),
                      "time": time.time()})


def _fields(cls: type, rec: Mapping[str, Any]) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in rec.items() if k in names}


def read_results(sweep_dir_or_file: str | Path) -> Results:
    """Parse points.jsonl (a sweep folder or the file itself); a missing file gives empty results."""
    path = Path(sweep_dir_or_file)
    if path.is_dir():
        path = path / POINTS_FILE
    res = Results()
    if not path.is_file():
        return res
    points: dict[tuple[str, int | float], Point] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            kind = rec["kind"]
            if kind == "point":
                p = Point(**_fields(Point, rec))
                p.epoch = epoch_label(p.epoch)
                p.metrics = {k: (float(v) if finite(v) else None) for k, v in (p.metrics or {}).items()}
                points.pop(p.key, None)  # re-insert: order follows the latest write
                points[p.key] = p
            elif kind == "trial":
                t = TrialStatus(**_fields(TrialStatus, rec))
                res.trials[t.trial_id] = t
            elif kind == "reference":
                res.references[(rec["model"], rec["role"])] = {
                    k: (float(v) if finite(v) else None) for k, v in rec["metrics"].items()}
            else:
                res.skipped_lines += 1
        except (ValueError, KeyError, TypeError):
            res.skipped_lines += 1
    res.points = list(points.values())
    return res


def resolve_sweep(arg: str | Path):
    """`SWEEP_DIR_OR_SPEC` -> (spec, sweep_dir): a sweep folder (holding spec.yaml), a spec file, or a preset
    name. The spec is loaded without checking that its models exist (the sweep already ran)."""
    from sweeps.spec import load_spec

    p = Path(arg).expanduser()
    if p.is_dir():
        spec_file = p / SPEC_FILE
        if not spec_file.is_file():
            raise ConfigError(str(p), value=str(p),
                              fix=f"this folder has no {SPEC_FILE}: give the sweep's folder (<storage>/<name>) or its spec file")
        spec = load_spec(spec_file, check_models=False)
        return spec, p.resolve()
    from sweeps.spec import list_presets

    if not p.exists() and str(arg) not in list_presets():
        raise ConfigError(str(arg), value=str(arg),
                          fix="no such sweep folder: give <storage>/<name> of a sweep (e.g. runs/sweeps/tofu-mini), "
                              "its spec file, or a preset name")
    spec = load_spec(arg, check_models=False)
    return spec, spec.sweep_dir()


def moved_sweep_check(spec, folder: str | Path) -> None:
    """A sweep resumes only where it ran: its trials' state (Ray Tune's, the searchers' studies, the trials' own
    configs) holds the folder's absolute path, so a resumed copy would write into the original folder. One-line
    ConfigError when `folder` is not the spec's own `<storage>/<name>` (reading a copy, `status`, `pareto`,
    `export`, `report`, works anywhere)."""
    here, ran = Path(folder).resolve(), Path(spec.sweep_dir()).expanduser().resolve()
    if here != ran:
        raise ConfigError(str(here), field="storage", value=str(ran),
                          fix=f"this sweep ran in {ran} and its state points there: resume it there (move the folder "
                              "back), or start a new sweep from its spec (`unlearn-sweep run "
                              f"{here / SPEC_FILE} --storage-path DIR --name NEW`); status, pareto, export and report "
                              "read a copy wherever it is")


def write_spec_copy(spec, sweep_dir: str | Path) -> Path:
    """Write the resolved spec beside the results (what `resolve_sweep` reads back)."""
    path = Path(sweep_dir) / SPEC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_yaml(), encoding="utf-8")
    return path
