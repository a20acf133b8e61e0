"""lm-evaluation-harness's tasks for the `lm_eval:` block: the task index (cached per process), the metric names
each task reports, and wmdp-mini's local data (the shipped task YAMLs pointed at it, the WMDP/MMLU schema check).

    from unlearning.evaluation.lm_eval_tasks import metric_names, check_mc_rows, materialise_tasks
    metric_names(parse_lm_eval({"tasks": ["wmdp_mini"]}))     # ("wmdp_mini_acc", "wmdp_mini_acc_norm", ...)
    check_mc_rows("bio.jsonl")                                # the row count, or a one-line DataError

lm_eval is imported only inside these functions (it adds ~0.7 s to an import of torch); docs/wmdp.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearning.errors import ConfigError, DataError
from unlearning.evaluation.lm_eval_settings import (LOCAL_TASKS_DIR, MC_DEFAULT_METRICS, SETTINGS_KEY, WMDP_MINI_GROUPS,
                                                    WMDP_MINI_TASKS, LmEvalConfig)

# ---------------------------------------------------------------------------------------------------
# tasks: lm-eval's index (cached per process: indexing lm-eval's ~15k built-in tasks takes seconds)


@functools.lru_cache(maxsize=8)
def _task_manager(include_paths: tuple[str, ...], defaults: bool) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_paths) or None, include_defaults=defaults)


def _needs_defaults(cfg: LmEvalConfig) -> bool:
    """Whether a task name is not wmdp-mini's nor defined in include_path (then lm-eval's own index is read)."""
    if all(t in WMDP_MINI_TASKS or t in WMDP_MINI_GROUPS for t in cfg.tasks):
        return False
    local = _task_manager((str(LOCAL_TASKS_DIR), *cfg.include_path), False).all_tasks
    return any(t not in local for t in cfg.tasks)


def task_manager(cfg: LmEvalConfig, tasks_dir: Path | None = None) -> Any:
    """lm-eval's TaskManager over wmdp-mini's tasks (`tasks_dir`, or the shipped YAMLs), include_path, and
    lm-eval's built-in tasks when a name needs them."""
    return _task_manager((str(tasks_dir or LOCAL_TASKS_DIR), *cfg.include_path), _needs_defaults(cfg))


def _metrics_of(entry_cfg: Mapping[str, Any], group: bool) -> tuple[str, ...]:
    listed = entry_cfg.get("aggregate_metric_list" if group else "metric_list")
    if isinstance(listed, Mapping):
        listed = [listed]
    if listed:
        return tuple(str(m["metric"]) for m in listed if isinstance(m, Mapping) and "metric" in m)
    return MC_DEFAULT_METRICS if entry_cfg.get("output_type", "multiple_choice") == "multiple_choice" else ()


def reported_tasks(cfg: LmEvalConfig) -> tuple[str, ...]:
    """The tasks whose metrics are reported: those named, and the members of wmdp-mini's group."""
    out = list(cfg.tasks)
    for name in cfg.tasks:
        out += [m for m in WMDP_MINI_GROUPS.get(name, ()) if m not in out]
    return tuple(out)


def metric_names(cfg: LmEvalConfig, where: str = "eval.settings") -> tuple[str, ...]:
    """Every metric the block reports (`<task>_<metric>`); an unknown task is a one-line ConfigError."""
    from lm_eval.tasks._index import Kind

    tm = task_manager(cfg)
    names: list[str] = []
    for task in reported_tasks(cfg):
        entry = tm.task_index.get(task)
        if entry is None:
            import difflib

            close = difflib.get_close_matches(task, tm.all_tasks, n=1)
            raise ConfigError(where, field=f"{SETTINGS_KEY}.tasks", value=task,
                              fix=("did you mean '" + close[0] + "'? " if close else "")
                              + "give wmdp-mini's tasks (wmdp_mini, wmdp_mini_bio, wmdp_mini_cyber, mmlu_mini), "
                                "a task registered in lm-eval (wmdp_bio, wmdp_cyber, mmlu, ...) or one of "
                                "include_path")
        if task in cfg.data_files and entry.kind == Kind.GROUP:
            raise ConfigError(where, field=f"{SETTINGS_KEY}.data_files", value=task,
                              fix="data_files replaces one task's dataset: name the group's tasks instead "
                                  "(e.g. wmdp_bio, wmdp_cyber)")
        names += [f"{task}_{m}" for m in _metrics_of(_entry_config(entry), entry.kind == Kind.GROUP)]
    return tuple(names)


def _entry_config(entry: Any) -> dict[str, Any]:
    """A registered task's full config (its `include:` resolved), as lm-eval builds it."""
    if entry.yaml_path is not None:
        from lm_eval.tasks._yaml_loader import load_yaml

        return dict(load_yaml(entry.yaml_path, resolve_func=True))
    return dict(entry.cfg or {})


# ---------------------------------------------------------------------------------------------------
# local data: wmdp-mini's folder, the task YAMLs pointed at it, and the schema check


def check_mc_rows(path: str | Path, required: tuple[str, ...] = ("question", "choices", "answer")) -> int:
    """A WMDP/MMLU-schema file (question str, choices list of >= 2 strings, answer int index); the row count.
    A bad row is a one-line DataError naming the file, the row and the field."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(str(path), field=None, value=None, fix=f"not valid JSON / JSON Lines ({exc})") from None
    if not rows:
        raise DataError(str(path), field="rows", value=0, fix="the file holds no questions")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(str(path), row=i, value=row, fix="each row is a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise DataError(str(path), row=i, field=missing[0], value=None,
                            fix=f"WMDP's schema: question (str), choices (list of str), answer (int); "
                                f"MMLU adds subject")
        choices, answer = row["choices"], row["answer"]
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise DataError(str(path), row=i, field="question", value=row["question"], fix="give a non-empty string")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(str(path), row=i, field="choices", value=choices,
                            fix="give a list of at least 2 option strings (WMDP and MMLU have 4)")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise DataError(str(path), row=i, field="answer", value=answer,
                            fix=f"give the index of the correct option, an integer in 0..{len(choices) - 1}")
    return len(rows)


def materialise_tasks(data_dir: Path) -> Path:
    """wmdp-mini's shipped task YAMLs, written to `<data_dir>/lm_eval_tasks/` with absolute `data_files`."""
    from unlearning.yaml_io import read_yaml

    out = data_dir / "lm_eval_tasks"
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    for src in sorted(LOCAL_TASKS_DIR.glob("*.yaml")):
        cfg = read_yaml(src)
        files = (cfg.get("dataset_kwargs") or {}).get("data_files")
        if isinstance(files, Mapping):
            cfg["dataset_kwargs"]["data_files"] = {k: str(data_dir / v) for k, v in files.items()}
        text = yaml.safe_dump(cfg, sort_keys=False)
        target = out / src.name
        if not target.is_file() or target.read_text() != text:
            tmp = out / f".{src.name}.tmp"
            tmp.write_text(text)
            tmp.replace(target)
    return out


def _override(entry_cfg: dict[str, Any], path: str) -> dict[str, Any]:
    """A registered task's config reading `path` (a local copy of its test split) instead of its hub dataset."""
    cfg = {k: v for k, v in entry_cfg.items() if k not in ("dataset_name", "group", "tag")}
    split = cfg.get("test_split") or "test"
    cfg.update(dataset_path="json", dataset_kwargs={"data_files": {split: path}}, test_split=split,
               training_split=None, validation_split=None)
    if cfg.get("fewshot_split") not in (None, split):
        cfg["fewshot_split"] = split  # the local file is the only split there is
    return cfg
