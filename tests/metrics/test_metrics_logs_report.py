"""Unit tests of reference_logs.py (reading OU logs, clear errors) and report.py (writing OU's layout)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unlearning.errors import DataError
from unlearning.metrics.reference_logs import EvalLog
from unlearning.metrics.report import metric_result, read_eval, read_summary, summarize, write_report
from unlearning.metrics.tofu_metrics import MODEL_UTILITY_INPUTS


def _eval_log() -> dict:
    log = {name: {"agg_value": 0.5, "value_by_index": {"0": {"score": 0.5}}} for name in MODEL_UTILITY_INPUTS}
    log["forget_truth_ratio"] = {"agg_value": 0.8, "value_by_index": {"0": {"score": 1.25}, "1": {"score": 0.8}}}
    log["mia_min_k"] = {
        "forget": {"agg_value": 1.0, "value_by_index": {"0": {"score": 1.0}}},
        "holdout": {"agg_value": 2.0, "value_by_index": {"0": {"score": 2.0}}},
        "auc": 1.0,
        "agg_value": 1.0,
    }
    log["forget_quality"] = {"agg_value": None}
    return log


def test_eval_log_accessors(tmp_path) -> None:
    (tmp_path / "TOFU_EVAL.json").write_text(json.dumps(_eval_log()))
    log = EvalLog.load(tmp_path)
    assert not log.is_summary
    assert log.truth_ratios().tolist() == [1.25, 0.8]
    assert log.mia_auc() == 1.0
    assert log.mia_scores("mia_min_k", "holdout").tolist() == [2.0]
    assert log.utility_inputs() == dict.fromkeys(MODEL_UTILITY_INPUTS, 0.5)
    assert log.agg("forget_quality") is None


def test_summary_log(tmp_path) -> None:
    (tmp_path / "TOFU_SUMMARY.json").write_text(json.dumps({"mia_min_k": 0.9, "forget_quality": 0.01}))
    log = EvalLog.load(tmp_path)
    assert log.is_summary and log.agg("forget_quality") == 0.01 and log.mia_auc() == 0.9
    with pytest.raises(DataError, match="forget_truth_ratio") as err:
        log.truth_ratios()
    assert "TOFU_SUMMARY.json" in str(err.value)


def test_missing_key_names_file_and_key(tmp_path) -> None:
    data = _eval_log()
    del data["ra_Truth_Ratio"]
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as err:
        EvalLog.load(path).utility_inputs()
    assert str(path) in str(err.value) and "ra_Truth_Ratio" in str(err.value)
    data = _eval_log()
    del data["forget_truth_ratio"]["value_by_index"]["1"]["score"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"forget_truth_ratio\.value_by_index\.1\.score"):
        EvalLog.load(path).truth_ratios()


def test_missing_or_broken_file(tmp_path) -> None:
    with pytest.raises(DataError, match="TOFU_SUMMARY.json"):
        EvalLog.load(tmp_path)  # empty folder
    bad = tmp_path / "TOFU_EVAL.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="valid UTF-8 JSON"):
        EvalLog.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match="JSON object"):
        EvalLog.load(bad)


def test_write_and_read_report(tmp_path) -> None:
    records = [{"score": np.float32(0.25)}, {"score": torch.tensor(0.5).item()}] + [{"score": 1.0}] * 9
    results = {
        "forget_truth_ratio": metric_result(np.float64(0.75), records),
        "forget_quality": metric_result(None),
        "extraction_strength": {"agg_value": 0.1, "value_by_index": {"3": {"score": np.array(0.1)}}},
    }
    eval_path, summary_path = write_report(tmp_path / "out", results)
    assert eval_path.name == "TOFU_EVAL.json" and summary_path.name == "TOFU_SUMMARY.json"
    back = read_eval(tmp_path / "out")
    assert list(back) == ["extraction_strength", "forget_quality", "forget_truth_ratio"]
    assert list(back["forget_truth_ratio"]["value_by_index"]) == [str(i) for i in range(11)]  # "10" after "9"
    assert back["forget_truth_ratio"]["value_by_index"]["0"] == {"score": 0.25}
    assert back["extraction_strength"]["value_by_index"]["3"] == {"score": 0.1}
    expected_summary = {"extraction_strength": 0.1, "forget_quality": None, "forget_truth_ratio": 0.75}
    assert read_summary(tmp_path / "out") == expected_summary
    assert EvalLog.load(tmp_path / "out").truth_ratios().tolist() == [0.25, 0.5] + [1.0] * 9
    write_report(tmp_path / "out", {"privleak": {"agg_value": 5.0}}, benchmark="MUSE")
    assert read_summary(tmp_path / "out" / "MUSE_SUMMARY.json") == {"privleak": 5.0}
    assert [p.name for p in sorted((tmp_path / "out").iterdir())] == [
        "MUSE_EVAL.json", "MUSE_SUMMARY.json", "TOFU_EVAL.json", "TOFU_SUMMARY.json"
    ]


def test_summarize_requires_agg_value() -> None:
    assert summarize({"a": {"agg_value": 1}}) == {"a": 1}
    with pytest.raises(ValueError, match="agg_value"):
        summarize({"a": {"value": 1}})
    with pytest.raises(ValueError, match="indices"):
        metric_result(1.0, [{"score": 1}], indices=[0, 1])
