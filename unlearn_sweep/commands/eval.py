"""`unlearn-sweep eval MODEL`: evaluate one model on a benchmark (TOFU, MUSE, LKF, WMDP; `--benchmark` names one of
their `cli_choices`, `unlearning.benchmarks.registry`) and write OU-layout logs.

    unlearn-sweep eval tofu-mini/target --forget-split forget10 --retain-model tofu-mini/retain90 --out runs/eval_target
    unlearn-sweep eval runs/npo/model --benchmark tofu --data TOFU_DIR --template llama2-chat \\
        --retain-logs RETAIN_LOGS --out runs/eval_npo          # RETAIN_LOGS: the retain model's TOFU_EVAL.json
    unlearn-sweep eval tofu-mini/target --benchmark lkf-mini --out runs/lkf_target
    unlearn-sweep eval muse-bench/MUSE-News_target --benchmark muse-news --data /data/muse-news --out runs/muse
    unlearn-sweep eval muse-mini/target --benchmark muse-mini --retain-model muse-mini/retain --out runs/muse_mini
    unlearn-sweep eval tofu-mini/target --benchmark wmdp-mini --out runs/wmdp_target     # offline, lm-eval
    unlearn-sweep eval MODEL --benchmark wmdp --metrics wmdp_cyber,mmlu --out runs/wmdp  # hub; --metrics: tasks

Writes `<out>/TOFU_EVAL.json` + `TOFU_SUMMARY.json` (or MUSE_*, LKF_*, LMEval_* for WMDP: open-unlearning's
lm-eval evaluator's names) and prints the headline numbers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from unlearning.errors import ConfigError

EXAMPLES = """Examples:

  unlearn-sweep eval tofu-mini/target --forget-split forget10 --retain-model tofu-mini/retain90 --out runs/eval_target

  unlearn-sweep eval runs/npo/model --benchmark tofu --data TOFU_DIR --template llama2-chat --retain-logs RETAIN_LOGS --out runs/npo

  unlearn-sweep eval tofu-mini/target --metrics forget_quality,model_utility --max-new-tokens 64 --out runs/quick

  unlearn-sweep eval muse-bench/MUSE-News_target --benchmark muse-news --data /data/muse-news --out runs/muse

  unlearn-sweep eval muse-mini/target --benchmark muse-mini --retain-model muse-mini/retain --out runs/muse_mini

  unlearn-sweep eval tofu-mini/target --benchmark wmdp-mini --out runs/wmdp_target

  unlearn-sweep eval MODEL --benchmark wmdp --metrics wmdp_cyber,mmlu --out runs/wmdp
"""


def choices() -> dict[str, Any]:
    """`--benchmark` names -> their benchmark (`Benchmark.cli_choices` of `unlearning.benchmarks.registry`)."""
    from unlearning.benchmarks.registry import BENCHMARKS

    return {c: b for b in BENCHMARKS.values() for c in getattr(b, "cli_choices", ())}


def run_eval(model: str, *, benchmark: str = "tofu-mini", out: Path, data: Optional[str] = None,
             forget_split: str = "forget10", retain_logs: Optional[str] = None, retain_model: Optional[str] = None,
             metrics: Optional[str] = None, max_new_tokens: Optional[int] = None, question_key: str = "question",
             template: Optional[str] = None, dtype: str = "float32", device: str = "cpu",
             batch_tokens: int = 8192, generation_batch_size: int = 64, gibberish: str = "offline",
             log=print) -> dict[str, Any]:
    """Evaluate `model` on the benchmark `--benchmark` names and write its logs to `out`; returns the evaluator's
    results dict (OU layout; WMDP's lm-eval evaluator: flat {<task>_<metric>: value})."""
    from unlearning.evaluation.tofu_eval import summary_table

    bench = choices().get(benchmark)
    if bench is None:
        raise ConfigError("eval", field="benchmark", value=benchmark, fix=f"use one of {', '.join(choices())}")
    from unlearning.models.prepare import ensure_zoo_models

    ensure_zoo_models([model, retain_model], log=log)  # zoo models nobody prepared yet are trained first
    settings: dict[str, Any] = {"batch_tokens": batch_tokens, "generation_batch_size": generation_batch_size,
                                "gibberish": {"detector": gibberish}}
    if metrics:
        settings["metrics"] = [m.strip() for m in metrics.split(",") if m.strip()]
    t0 = time.perf_counter()
    bundle, evaluator = bench.cli_evaluator(benchmark, model, {
        "data": data, "forget_split": forget_split, "retain_logs": retain_logs, "retain_model": retain_model,
        "settings": settings, "max_new_tokens": max_new_tokens, "question_key": question_key, "template": template,
        "dtype": dtype, "device": device, "log": log})
    results = evaluator.evaluate(bundle.model)
    eval_path, summary_path = evaluator.write(results, out)
    wall = time.perf_counter() - t0
    shown = [m for m in bench.headline if m in results] or list(results)  # e.g. lm-eval tasks given by --metrics
    log(summary_table({model: results}, shown))
    log(f"wrote {eval_path} and {summary_path} ({wall:.1f}s)")
    return results


def register(app: typer.Typer) -> None:
    @app.command("eval", epilog=EXAMPLES)
    def eval_command(
        model: str = typer.Argument(..., help="Zoo name (tofu-mini/target), local model folder or hub id."),
        out: Path = typer.Option(..., help="Output folder for <BENCH>_EVAL.json and <BENCH>_SUMMARY.json "
                                          "(LMEval_* for wmdp, wmdp-mini)."),
        benchmark: str = typer.Option("tofu-mini", help="The benchmark and its data: tofu-mini, tofu, muse-news, "
                                                        "muse-books, muse-mini, lkf-mini, lkf, wmdp-mini, wmdp "
                                                        "(every benchmark's `cli_choices`)."),
        data: Optional[str] = typer.Option(None, help="Local data folder (default: the zoo's tofu-mini, or the hub)."),
        forget_split: str = typer.Option("forget10", help="TOFU forget split: forget01, forget05 or forget10."),
        retain_logs: Optional[str] = typer.Option(None, help="Retain model's TOFU_EVAL.json / MUSE_EVAL.json (file "
                                                 "or folder)."),
        retain_model: Optional[str] = typer.Option(None, help="Retain model to evaluate once (cached) as reference."),
        metrics: Optional[str] = typer.Option(None, help="Comma-separated subset of metrics (default: all); for "
                                                         "wmdp / wmdp-mini the lm-eval tasks (default wmdp_bio,"
                                                         "wmdp_cyber,mmlu / wmdp_mini,mmlu_mini)."),
        max_new_tokens: Optional[int] = typer.Option(None, help="Greedy generation length (TOFU default 200)."),
        question_key: str = typer.Option("question", help="Forget question field, e.g. paraphrased_question."),
        template: Optional[str] = typer.Option(None, help="Prompt template family when the name does not tell it."),
        dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
        device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
        batch_tokens: int = typer.Option(8192, help="Padded tokens per scoring batch (memory knob)."),
        generation_batch_size: int = typer.Option(64, help="Prompts per generation batch."),
        gibberish: str = typer.Option("offline", help="Gibberish detector: offline or hub."),
    ) -> None:
        """Evaluate one model (all TOFU, MUSE or LKF metrics, or a subset; WMDP / MMLU accuracy through
        lm-evaluation-harness) and write open-unlearning-layout logs."""
        run_eval(model, benchmark=benchmark, out=out, data=data, forget_split=forget_split, retain_logs=retain_logs,
                 retain_model=retain_model, metrics=metrics, max_new_tokens=max_new_tokens,
                 question_key=question_key, template=template, dtype=dtype, device=device,
                 batch_tokens=batch_tokens, generation_batch_size=generation_batch_size, gibberish=gibberish,
                 log=typer.echo)
