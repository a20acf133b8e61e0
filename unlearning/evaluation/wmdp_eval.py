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
    ev.write(results, out)  # out/LMEval_EVAL.json + LMEval_SUMMARY.json (open-unlearning's names, `LOG_NAME`)
    unlearn-sweep eval tofu-mini/target --benchmark wmdp-mini --out runs/wmdp_target   # one model, its logs
    python -m unlearning.benchmarks.wmdp tofu-mini/target tofu-mini/retain90      # the table of both

This module is the evaluator (and its OU-layout logs), lm-eval's `HFLM` adapter and the quiet context; the block's
settings are `lm_eval_settings.py` and the task index and local data `lm_eval_tasks.py` (re-exported here). lm_eval
is imported only when an evaluator is built (it adds ~0.7 s to an import of torch).
"""


from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearning.errors import ConfigError, DataError
from unlearning.evaluation.lm_eval_settings import (SETTINGS_KEY, WMDP_MINI_GROUPS, WMDP_MINI_TASKS,  # noqa: F401
                                                    LmEvalConfig, parse_lm_eval, split_settings, uses_wmdp_mini)
from unlearning.evaluation.lm_eval_tasks import (_entry_config, _override, check_mc_rows,  # noqa: F401
                                                 materialise_tasks, metric_names, reported_tasks, task_manager)

# open-unlearning names its lm-eval evaluator's logs after the evaluator: `LMEval_EVAL.json` / `LMEval_SUMMARY.json`
# (locuslab/open-unlearning @ d3d7cf9e6b3c125d16687d4232680d8d83548f1a: src/evals/lm_eval.py `self.name = "LMEval"`
# for configs/eval/lm_eval.yaml's `handler: LMEvalEvaluator`; src/evals/base.py `get_logs_file_path`:
# `f"{self.name}_{suffix}.json"`, suffix EVAL or SUMMARY). The metric keys stay the project's `<task>_<metric>`
# (OU's summary writes `<task>/<metric>` and its EVAL file lm-eval's per-sample logs).
LOG_NAME = "LMEval"


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

    def write(self, results: Mapping[str, float], out_dir: str | Path) -> tuple[Path, Path]:
        """LMEval_EVAL.json ({<task>_<metric>: {"agg_value": v}}) + LMEval_SUMMARY.json ({<task>_<metric>: v}) of
        `evaluate`'s results in out_dir (OU layout, `unlearning.metrics.report.write_report`)."""
        from unlearning.metrics.report import metric_result, write_report  # torch: not at the registry's import

        return write_report(out_dir, {k: metric_result(v) for k, v in results.items()}, benchmark=LOG_NAME)


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
