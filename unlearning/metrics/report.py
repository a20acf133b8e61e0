"""Write our evaluation results in open-unlearning's layout, and read them back.

`<BENCH>_EVAL.json` = {metric: {"agg_value": v, "value_by_index": {"0": {...}, ...}}} (metrics with
no per-item values, e.g. forget_quality, hold only "agg_value"; MIA metrics keep their
"forget"/"holdout"/"auc" blocks) and `<BENCH>_SUMMARY.json` = {metric: agg_value}. Both are written
atomically (temp file + rename) with indent 4, metric names sorted and per-item order kept, like
OU's files; NaN is written as `NaN` (Python's json, as OU does).

    results = {"forget_quality": {"agg_value": fq}, "forget_truth_ratio": truth_ratio_metric(...)}
    eval_path, summary_path = write_report(out_dir, results)          # benchmark="TOFU" | "MUSE"
    read_eval(out_dir)["forget_truth_ratio"]["value_by_index"]["0"]["score"]
    read_summary(out_dir)["forget_quality"]
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unlearning.metrics.reference_logs import read_json_log


def metric_result(
    agg_value: Any, records: Sequence[Any] | None = None, indices: Sequence[int | str] | None = None
) -> dict[str, Any]:
    """{"agg_value": ...} plus, when `records` are given, "value_by_index" keyed "0", "1", ... (or `indices`)."""
    out: dict[str, Any] = {"agg_value": agg_value}
    if records is not None:
        keys = [str(i) for i in (indices if indices is not None else range(len(records)))]
        if len(keys) != len(records):
            raise ValueError(f"{len(keys)} indices given for {len(records)} records")
        out["value_by_index"] = dict(zip(keys, records))
    return out


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy / torch scalars and arrays to Python numbers / lists, keys to str."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """{metric: agg_value} of a results dict (entries must carry "agg_value")."""
    summary: dict[str, Any] = {}
    for name, entry in results.items():
        if not isinstance(entry, Mapping) or "agg_value" not in entry:
            raise ValueError(f"result '{name}' must be a dict with 'agg_value', got {type(entry).__name__}")
        summary[name] = entry["agg_value"]
    return summary


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=4)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_report(out_dir: str | Path, results: Mapping[str, Any], benchmark: str = "TOFU") -> tuple[Path, Path]:
    """Write `<benchmark>_EVAL.json` and `<benchmark>_SUMMARY.json` into out_dir; return both paths."""
    out_dir = Path(out_dir)
    data = {name: entry for name, entry in sorted(to_jsonable(results).items())}
    summary = summarize(data)
    eval_path, summary_path = out_dir / f"{benchmark}_EVAL.json", out_dir / f"{benchmark}_SUMMARY.json"
    _write_json_atomic(eval_path, data)
    _write_json_atomic(summary_path, summary)
    return eval_path, summary_path


def _resolve(path: str | Path, suffix: str, benchmark: str) -> Path:
    path = Path(path)
    return path / f"{benchmark}_{suffix}.json" if path.is_dir() else path


def read_eval(path: str | Path, benchmark: str = "TOFU") -> dict[str, Any]:
    """Read a `<benchmark>_EVAL.json` (file or its folder); DataError names the file when it is bad."""
    return read_json_log(_resolve(path, "EVAL", benchmark))


def read_summary(path: str | Path, benchmark: str = "TOFU") -> dict[str, Any]:
    """Read a `<benchmark>_SUMMARY.json` (file or its folder)."""
    return read_json_log(_resolve(path, "SUMMARY", benchmark))
