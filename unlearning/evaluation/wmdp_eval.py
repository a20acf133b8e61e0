"""Multiple-choice evaluation through lm-evaluation-harness: WMDP, MMLU and the offline wmdp-mini.

open-unlearning evaluates WMDP with lm-eval (`src/evals/lm_eval.py`: `HFLM(pretrained=model, tokenizer=...)`,
`TaskManager`, `simple_evaluate`); this module does the same on an in-memory model, at every evaluation
point of a run. The settings are the `lm_eval:` block of a train config's `eval.settings` (validated by
`LmEvalConfig`, one-line errors before any compute):

    eval:
      settings:
        metrics: [forget_quality]                      # the TOFU evaluator's own settings, as before
        lm_eval: {tasks: [wmdp_mini, mmlu_mini]}       # its metrics are merged into the point's metrics

* `tasks`: wmdp-mini's local tasks (`wmdp_mini` = `wmdp_mini_bio` + `wmdp_mini_cyber`, `mmlu_mini`;
  `unlearning/evaluation/lm_eval_tasks/`, data from `unlearning/data/wmdp_mini.py`, derived from the run's
  tofu-mini data and forget split), lm-eval's registered tasks by name (`wmdp_bio`, `wmdp_cyber`, `wmdp`,
  `mmlu`: `cais/wmdp`, `cais/mmlu` from the hub) or tasks of `include_path` folders;
* `data_files: {task: file}` runs a registered task (its own prompt, choices and metrics) on a local file
  with the dataset's schema instead of the hub's copy (how the hub names are tested offline);
* `limit` (docs per task, or a fraction < 1), `num_fewshot`, `batch_size` as in lm-eval.

Metrics are flat floats `<task>_<metric>` for every task named in `tasks` (and the members of wmdp-mini's
group): `wmdp_mini_acc`, `wmdp_mini_bio_acc`, `mmlu_mini_acc_norm`, `wmdp_bio_acc`, `mmlu_acc`, ...
(`acc`: the option with the highest summed log-likelihood is the answer; `acc_norm`: per character). A metric
computed under a filter other than lm-eval's `none` is named `<task>_<metric>_<filter>`.

    from unlearning.evaluation.wmdp_eval import LmEvalEvaluator, parse_lm_eval
    ev = LmEvalEvaluator(parse_lm_eval({"tasks": ["wmdp_mini", "mmlu_mini"]}), tokenizer, source=zoo_data)
    ev.evaluate(model)      # {"wmdp_mini_acc": 0.88, "wmdp_mini_bio_acc": 0.88, ..., "mmlu_mini_acc": 0.935}
    python -m unlearning.benchmarks.wmdp tofu-mini/target tofu-mini/retain90      # the table of both

lm_eval is imported only here, and only when an evaluator is built (it adds ~0.7 s to an import of torch).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from unlearning.errors import ConfigError, DataError

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


def _flatten(results: Mapping[str, Any], tasks: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in tasks:
        for key, value in (results.get(task) or {}).items():
            if "," not in key or "_stderr" in key or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric, filt = key.split(",", 1)
            name = f"{task}_{metric}" if filt == "none" else f"{task}_{metric}_{filt}"
            out[name] = float(value) if math.isfinite(value) else float("nan")
    return out


class LmEvalEvaluator:
    """Evaluates an in-memory causal LM on lm-eval tasks; the tasks (and their data) are loaded once."""

    def __init__(self, cfg: LmEvalConfig, tokenizer: Any, source: str | Path | None = None,
                 forget_split: str = "forget10", seed: int = 0) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.data_dir: Path | None = None
        tasks_dir = None
        if uses_wmdp_mini(cfg):
            if source is None or not Path(str(source)).is_dir():
                raise ConfigError("eval.settings", field=f"{SETTINGS_KEY}.tasks", value=list(cfg.tasks),
                                  fix="wmdp-mini is derived from tofu-mini: use data.source tofu-mini (or the "
                                      "zoo's data folder), or name other tasks")
            from unlearning.data.wmdp_mini import prepare_wmdp_mini

            self.data_dir = prepare_wmdp_mini(source, forget_split, seed)
            for task, name in WMDP_MINI_TASKS.items():
                check_mc_rows(self.data_dir / name)
            tasks_dir = materialise_tasks(self.data_dir)
        for task, path in cfg.data_files.items():
            check_mc_rows(path)
        self.metric_names = metric_names(cfg)
        tm = task_manager(cfg, tasks_dir)
        specs: list[Any] = [_override(_entry_config(tm.task_index[t]), cfg.data_files[t]) if t in cfg.data_files
                            else t for t in cfg.tasks]
        with _quiet():
            try:
                self.loaded = tm.load(specs)
            except Exception as exc:  # noqa: BLE001 - a dataset lm-eval cannot load: one line, before any compute
                raise DataError("lm-eval", field=f"{SETTINGS_KEY}.tasks", value=list(cfg.tasks),
                                fix=f"the tasks' data could not be loaded ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else ''}); offline, give "
                                    "data_files: {task: local file} or run where the hub is reachable") from None
        for task in self.loaded["tasks"].values():
            if cfg.num_fewshot is not None and task.get_config("num_fewshot") != 0:
                task.set_config(key="num_fewshot", value=cfg.num_fewshot)
            elif task.get_config("num_fewshot") is None:
                task.set_config(key="num_fewshot", value=0)
            task.set_fewshot_seed(seed=seed)

    def evaluate(self, model: Any) -> dict[str, float]:
        """{<task>_<metric>: value} of `model` now (its train/eval mode is restored afterwards)."""
        from lm_eval.evaluator import evaluate

        while hasattr(model, "module") and not hasattr(model, "config"):
            model = model.module  # a DeepSpeed / DDP wrapper
        was_training = model.training
        try:
            with _quiet():
                lm = _hflm(model, self.tokenizer, self.cfg.batch_size)
                out = evaluate(lm=lm, task_dict=self.loaded, limit=self.cfg.limit, bootstrap_iters=0,
                               log_samples=False)
        finally:
            model.train(was_training)
        return _flatten(out["results"], reported_tasks(self.cfg))


def _hflm(model: Any, tokenizer: Any, batch_size: int) -> Any:
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):  # no progress bar per evaluation point
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood(requests, disable_tqdm=True)

    return QuietHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


@contextlib.contextmanager
def _quiet():
    """lm-eval's and datasets' INFO/WARNING lines and progress bars off for the duration (errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval", "datasets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        import datasets

        bars = datasets.utils.logging.is_progress_bar_enabled()
        datasets.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - datasets is a pinned dependency
        bars = False
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars:
            datasets.utils.logging.enable_progress_bar()
