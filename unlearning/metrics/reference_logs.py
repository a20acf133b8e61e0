"""Read stored open-unlearning evaluation logs (`TOFU_EVAL.json` / `TOFU_SUMMARY.json`).

OU writes two files per evaluation: `*_EVAL.json` = {metric: {"agg_value": v, "value_by_index":
{"0": {...}, ...}}} (MIA metrics hold "forget"/"holdout"/"auc" instead of value_by_index) and
`*_SUMMARY.json` = {metric: agg_value}. The retain model's EVAL log is the reference for
forget_quality (per-item `forget_truth_ratio`) and privleak (`mia_min_k` AUC).

    ref = EvalLog.load("/work/shared/data/tofu/reference_eval_logs/tofu_Llama-2-7b-chat-hf_retain99")
    ref.truth_ratios()            # np.ndarray of the retain model's per-item tr on forget01
    ref.mia_auc()                 # its mia_min_k AUC
    ref.utility_inputs()          # the 9 model_utility inputs
Every missing file / key raises DataError naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearning.errors import DataError
from unlearning.metrics.tofu_metrics import MODEL_UTILITY_INPUTS

EVAL_FILE = "TOFU_EVAL.json"
SUMMARY_FILE = "TOFU_SUMMARY.json"
RETAIN_SPLIT_FOR_FORGET = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}


def read_json_log(path: str | Path) -> dict[str, Any]:
    """Parse one log file into a dict; DataError when missing, unreadable or not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), fix="point to an existing TOFU_EVAL.json / TOFU_SUMMARY.json (or its folder)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(str(path), value=str(exc), field="<file>", fix="the log must be valid UTF-8 JSON") from exc
    if not isinstance(data, dict):
        raise DataError(
            str(path), field="<top level>", value=type(data).__name__, fix="the log must be a JSON object {metric: ...}"
        )
    return data


@dataclass(frozen=True)
class EvalLog:
    """One stored OU log (EVAL or SUMMARY layout), with typed accessors."""

    path: Path
    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> EvalLog:
        """Load a log file, or a folder's TOFU_EVAL.json (else its TOFU_SUMMARY.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / EVAL_FILE if (path / EVAL_FILE).is_file() else path / SUMMARY_FILE
        return cls(path, read_json_log(path))

    @property
    def is_summary(self) -> bool:
        """True for the SUMMARY layout {metric: value} (no per-item values)."""
        return not any(isinstance(v, dict) for v in self.data.values())

    def has(self, metric: str) -> bool:
        return metric in self.data

    def _entry(self, metric: str) -> Any:
        if metric not in self.data:
            raise DataError(
                str(self.path), field=metric, value=None,
                fix=f"the log has no '{metric}'; it holds: {', '.join(sorted(self.data)) or 'nothing'}",
            )
        return self.data[metric]

    def agg(self, metric: str) -> Any:
        """A metric's aggregate value (`agg_value` in EVAL, the plain value in SUMMARY); may be None."""
        entry = self._entry(metric)
        if isinstance(entry, dict):
            if "agg_value" not in entry:
                raise DataError(
                    str(self.path), field=f"{metric}.agg_value", value=sorted(entry),
                    fix="each metric entry needs 'agg_value'",
                )
            return entry["agg_value"]
        return entry

    def items(self, metric: str) -> dict[str, Any]:
        """A metric's per-item records {"0": {...}, ...} in stored order (EVAL layout only)."""
        entry = self._entry(metric)
        if not isinstance(entry, dict) or not isinstance(entry.get("value_by_index"), dict):
            raise DataError(
                str(self.path), field=f"{metric}.value_by_index", value=None,
                fix="per-item values are only in *_EVAL.json logs; a SUMMARY log holds aggregates only",
            )
        return entry["value_by_index"]

    def scores(self, metric: str, field: str = "score") -> np.ndarray:
        """Per-item `field` values of a metric, in stored order."""
        values = []
        for idx, record in self.items(metric).items():
            if not isinstance(record, dict) or field not in record:
                raise DataError(
                    str(self.path), field=f"{metric}.value_by_index.{idx}.{field}", value=record,
                    fix=f"every item needs '{field}'",
                )
            values.append(record[field])
        return np.asarray(values, dtype=np.float64)

    def truth_ratios(self, metric: str = "forget_truth_ratio") -> np.ndarray:
        """Per-item truth ratios (tr = P_wrong / P_correct), the forget_quality reference sample."""
        return self.scores(metric)

    def mia_auc(self, metric: str = "mia_min_k") -> float:
        """A MIA metric's AUC (privleak reference); reads `auc` when present, else the aggregate."""
        entry = self._entry(metric)
        value = entry.get("auc", entry.get("agg_value")) if isinstance(entry, dict) else entry
        if not isinstance(value, (int, float)):
            raise DataError(
                str(self.path), field=f"{metric}.auc", value=value, fix="the MIA entry needs a numeric 'auc'"
            )
        return float(value)

    def mia_scores(self, metric: str, group: str) -> np.ndarray:
        """Per-item scores of a MIA metric for group "forget" or "holdout", in stored order."""
        entry = self._entry(metric)
        block = entry.get(group) if isinstance(entry, dict) else None
        if not isinstance(block, dict) or not isinstance(block.get("value_by_index"), dict):
            raise DataError(
                str(self.path), field=f"{metric}.{group}.value_by_index", value=None,
                fix="MIA entries hold 'forget' and 'holdout' per-item scores",
            )
        return EvalLog(self.path, {f"{metric}.{group}": block}).scores(f"{metric}.{group}")

    def utility_inputs(self) -> dict[str, float]:
        """The 9 model_utility inputs (aggregates) of this log."""
        out: dict[str, float] = {}
        for name in MODEL_UTILITY_INPUTS:
            value = self.agg(name)
            if not isinstance(value, (int, float)):
                raise DataError(str(self.path), field=name, value=value, fix="model_utility inputs must be numbers")
            out[name] = float(value)
        return out


@dataclass(frozen=True)
class RetainReference:
    """Retain-model statistics: per-item forget truth ratios and the min-k MIA AUC (either may be None)."""

    truth_ratios: np.ndarray | None
    mia_auc: float | None
    source: str

    @classmethod
    def from_results(cls, results: dict[str, Any], source: str) -> RetainReference:
        """From an in-memory results dict in OU layout (e.g. the evaluator's output for the retain model)."""
        return cls.from_log(EvalLog(Path(source), results))

    @classmethod
    def from_log(cls, log: EvalLog) -> RetainReference:
        tr = log.truth_ratios() if log.has("forget_truth_ratio") and not log.is_summary else None
        auc = log.mia_auc() if log.has("mia_min_k") else None
        if tr is None and auc is None:
            raise DataError(str(log.path), field="forget_truth_ratio",
                            fix="a retain reference log needs per-item 'forget_truth_ratio' (TOFU_EVAL.json) "
                                "and/or 'mia_min_k'")
        return cls(tr, auc, str(log.path))


def load_reference(path: str | Path) -> RetainReference:
    """Read a retain model's TOFU_EVAL.json (file or folder), ours or open-unlearning's."""
    return RetainReference.from_log(EvalLog.load(path))
