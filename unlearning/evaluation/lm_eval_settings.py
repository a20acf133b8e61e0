"""The `lm_eval:` block of a run's `eval.settings` (WMDP / MMLU / wmdp-mini through lm-evaluation-harness): its
pydantic model and one-line errors, before any compute (docs/wmdp.md).

    from unlearning.evaluation.lm_eval_settings import parse_lm_eval, split_settings
    rest, cfg = split_settings({"metrics": [...], "lm_eval": {"tasks": ["wmdp_mini", "mmlu_mini"]}})
    cfg.tasks, cfg.limit, uses_wmdp_mini(cfg)

The evaluator is `unlearning.evaluation.wmdp_eval.LmEvalEvaluator`; the task index `lm_eval_tasks.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from unlearning.errors import ConfigError

SETTINGS_KEY = "lm_eval"
LOCAL_TASKS_DIR = Path(__file__).with_name("lm_eval_tasks")
# wmdp-mini's tasks -> the file of the wmdp-mini folder each reads; its group -> members
WMDP_MINI_TASKS = {"wmdp_mini_bio": "bio.jsonl", "wmdp_mini_cyber": "cyber.jsonl", "mmlu_mini": "mmlu.jsonl"}
WMDP_MINI_GROUPS = {"wmdp_mini": ("wmdp_mini_bio", "wmdp_mini_cyber")}
MC_DEFAULT_METRICS = ("acc", "acc_norm")  # lm-eval's metrics of a multiple_choice task without metric_list


class LmEvalConfig(BaseModel):
    """The `eval.settings.lm_eval` block (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tasks: list[str] = Field(min_length=1)
    limit: int | float | None = None
    num_fewshot: int | None = Field(None, ge=0)
    batch_size: int = Field(64, ge=1)
    include_path: list[str] = Field(default_factory=list)
    data_files: dict[str, str] = Field(default_factory=dict)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: list[str]) -> list[str]:
        if any(not isinstance(t, str) or not t.strip() for t in value):
            raise ValueError("task names are non-empty strings, e.g. [wmdp_mini, mmlu_mini] or [wmdp_bio, mmlu]")
        if len(set(value)) != len(value):
            raise ValueError("a task is listed twice")
        return value

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | float | None) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, bool) or value <= 0 or (isinstance(value, float) and value >= 1):
            raise ValueError("give a number of documents per task (an integer >= 1) or a fraction in (0, 1)")
        return value

    @field_validator("include_path", mode="before")
    @classmethod
    def _include(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        for p in value or []:
            if not Path(str(p)).expanduser().is_dir():
                raise ValueError(f"'{p}' is not a folder of lm-eval task YAMLs")
        return [str(Path(str(p)).expanduser().resolve()) for p in value or []]

    @field_validator("data_files")
    @classmethod
    def _data_files(cls, value: dict[str, str]) -> dict[str, str]:
        for task, path in value.items():
            if not Path(path).expanduser().is_file():
                raise ValueError(f"{task}: '{path}' is not a file (a local copy of the task's test split, "
                                 f".jsonl or .json)")
        return {t: str(Path(p).expanduser().resolve()) for t, p in value.items()}


def parse_lm_eval(data: Any, where: str = "eval.settings") -> LmEvalConfig:
    """Validate the `lm_eval` block; the first problem is a one-line ConfigError naming `lm_eval.<field>`."""
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise ConfigError(where, field=SETTINGS_KEY, value=data,
                          fix="give a mapping, e.g. lm_eval: {tasks: [wmdp_mini, mmlu_mini]}")
    try:
        cfg = LmEvalConfig.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        fix = err.get("msg", "invalid value").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            fix = f"unknown key; allowed keys: {', '.join(LmEvalConfig.model_fields)}"
        raise ConfigError(where, field=f"{SETTINGS_KEY}.{loc}" if loc else SETTINGS_KEY,
                          value=err.get("input"), fix=fix) from None
    unknown = [t for t in cfg.data_files if t not in cfg.tasks]
    if unknown:
        raise ConfigError(where, field=f"{SETTINGS_KEY}.data_files", value=unknown[0],
                          fix=f"data_files names tasks of `tasks` ({', '.join(cfg.tasks)})")
    local = [t for t in cfg.data_files if t in WMDP_MINI_TASKS or t in WMDP_MINI_GROUPS]
    if local:
        raise ConfigError(where, field=f"{SETTINGS_KEY}.data_files", value=local[0],
                          fix="wmdp-mini's data is generated from the run's tofu-mini data; data_files is for "
                              "registered tasks (wmdp_bio, mmlu_astronomy, ...)")
    return cfg


def split_settings(settings: Mapping[str, Any], where: str = "eval.settings"
                   ) -> tuple[dict[str, Any], LmEvalConfig | None]:
    """(the settings without `lm_eval`, the validated `lm_eval` block or None)."""
    rest = dict(settings)
    block = rest.pop(SETTINGS_KEY, None)
    return rest, (None if block is None else parse_lm_eval(block, where))


def uses_wmdp_mini(cfg: LmEvalConfig) -> bool:
    return any(t in WMDP_MINI_TASKS or t in WMDP_MINI_GROUPS for t in cfg.tasks)
