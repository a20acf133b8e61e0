"""Helpers for the metric golden tests: locate and load the stored open-unlearning reference logs (skip when absent)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

REF_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu" / "reference_eval_logs").resolve()
MODELS = ("Llama-2-7b-chat-hf", "Llama-3.1-8B-Instruct", "Llama-3.2-1B-Instruct", "Llama-3.2-3B-Instruct")
RETAINS = ("retain99", "retain95", "retain90")
FORGET_FOR_RETAIN = {"retain99": "forget01", "retain95": "forget05", "retain90": "forget10"}
RETAIN_LOGS = [f"tofu_{m}_{r}" for m in MODELS for r in RETAINS]


def require_reference_logs() -> Path:
    if not (REF_DIR / f"tofu_{MODELS[0]}_retain99" / "TOFU_EVAL.json").is_file():
        pytest.skip(f"open-unlearning reference eval logs not found at {REF_DIR} (shared TOFU data absent)")
    return REF_DIR


@lru_cache(maxsize=None)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_log(relative: str) -> dict[str, Any]:
    """A stored log as raw JSON (cached), e.g. load_log("tofu_X_retain99/TOFU_EVAL.json")."""
    return _load(str(require_reference_logs() / relative))
