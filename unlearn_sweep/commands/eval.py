"""`unlearn-sweep eval MODEL`: evaluate one model on TOFU / tofu-mini / MUSE and write OU-layout logs.

    unlearn-sweep eval tofu-mini/target --forget-split forget10 --retain-model tofu-mini/retain90 --out runs/eval_target
    unlearn-sweep eval runs/npo/model --benchmark tofu --data ../shared/data/tofu/normalized --template llama2-chat \\
        --retain-logs ../shared/data/tofu/reference_eval_logs/tofu_Llama-2-7b-chat-hf_retain90 --out runs/eval_npo
    unlearn-sweep eval muse-bench/MUSE-News_target --benchmark muse-news --data /data/muse-news --out runs/muse
    unlearn-sweep eval muse-mini/target --benchmark muse-mini --retain-model muse-mini/retain --out runs/muse_mini

Writes `<out>/TOFU_EVAL.json` + `TOFU_SUMMARY.json` (or MUSE_*) and prints the headline numbers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from unlearning.errors import ConfigError

BENCHMARKS = ("tofu-mini", "tofu", "muse-news", "muse-books", "muse-mini")
HEADLINE = {
    "tofu": ["forget_quality", "model_utility", "forget_truth_ratio", "privleak", "extraction_strength",
             "forget_Q_A_ROUGE", "forget_Q_A_gibberish", "forget_Q_A_gibberish_rate"],
    "muse": ["forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak",
             "forget_gibberish", "forget_gibberish_rate"],
}
EXAMPLES = """Examples:

  unlearn-sweep eval tofu-mini/target --forget-split forget10 --retain-model tofu-mini/retain90 --out runs/eval_target

  unlearn-sweep eval runs/npo/model --benchmark tofu --data TOFU_DIR --template llama2-chat --retain-logs RETAIN_LOGS --out runs/npo

  unlearn-sweep eval tofu-mini/target --metrics forget_quality,model_utility --max-new-tokens 64 --out runs/quick

  unlearn-sweep eval muse-bench/MUSE-News_target --benchmark muse-news --data /data/muse-news --out runs/muse

  unlearn-sweep eval muse-mini/target --benchmark muse-mini --retain-model muse-mini/retain --out runs/muse_mini
"""


def tofu_mini_source(model: str) -> Path:
    """The tofu-mini data folder of the model's zoo (or the default zoo); error when not prepared."""
    from unlearning.models.zoo import ZooConfig, parse_zoo_name, zoo_dir

    parsed = parse_zoo_name(model)
    cfg = parsed[0] if parsed else ZooConfig()
    data = zoo_dir(cfg) / "data"
    if not (data / "full.jsonl").is_file():
        size = "" if cfg.size == "small" else f" --size {cfg.size}"
        raise ConfigError("eval", field="benchmark", value="tofu-mini",
                          fix=f"tofu-mini is not generated yet: run `unlearn-sweep prepare tofu-mini{size}` "
                              "(or pass --data DIR)")
    return data


def muse_mini_source(model: str) -> Path:
    """The muse-mini corpus of the model's zoo (or the default one); error when not prepared."""
    from unlearning.models.muse_zoo import muse_data_dir, parse_muse_zoo_name

    parsed = parse_muse_zoo_name(model)
    data = muse_data_dir(parsed[0].size if parsed else "small")
    if not (data / "raw" / "forget.jsonl").is_file():
        raise ConfigError("eval", field="benchmark", value="muse-mini",
                          fix="muse-mini is not generated yet: run `unlearn-sweep prepare muse-mini` (or pass --data DIR)")
    return data


def run_eval(model: str, *, benchmark: str = "tofu-mini", out: Path, data: Optional[str] = None,
             forget_split: str = "forget10", retain_logs: Optional[str] = None, retain_model: Optional[str] = None,
             metrics: Optional[str] = None, max_new_tokens: Optional[int] = None, question_key: str = "question",
             template: Optional[str] = None, dtype: str = "float32", device: str = "cpu",
             batch_tokens: int = 8192, generation_batch_size: int = 64, gibberish: str = "offline",
             log=print) -> dict[str, Any]:
    """Evaluate `model` and write its logs to `out`; returns the results dict (OU layout)."""
    from unlearning.evaluation.config import EvalConfig, MuseEvalConfig, parse_config
    from unlearning.evaluation.muse_eval import MuseEvaluator
    from unlearning.evaluation.muse_reference import muse_reference
    from unlearning.evaluation.reference import reference_for
    from unlearning.evaluation.tofu_eval import TofuEvaluator, summary_table
    from unlearning.models.loading import load_bundle

    if benchmark not in BENCHMARKS:
        raise ConfigError("eval", field="benchmark", value=benchmark, fix=f"use one of {', '.join(BENCHMARKS)}")
    from unlearning.models.prepare import ensure_zoo_models

    ensure_zoo_models([model, retain_model], log=log)  # zoo models nobody prepared yet are trained first
    common: dict[str, Any] = {"batch_tokens": batch_tokens, "generation_batch_size": generation_batch_size,
                              "gibberish": {"detector": gibberish}}
    if metrics:
        common["metrics"] = [m.strip() for m in metrics.split(",") if m.strip()]
    t0 = time.perf_counter()
    if benchmark.startswith("muse"):
        if max_new_tokens is not None:
            common["knowmem_max_new_tokens"] = common["verbmem_max_new_tokens"] = max_new_tokens
        common["gibberish"]["max_length"] = 512
        cfg = parse_config(MuseEvalConfig, common, where="unlearn-sweep eval")
        corpus = "news" if benchmark == "muse-mini" else benchmark.split("-", 1)[1]
        muse_source = data or (muse_mini_source(model) if benchmark == "muse-mini" else None)
        ref_auc, _ = muse_reference(cfg, corpus, muse_source, retain_logs=retain_logs, retain_model=retain_model,
                                    dtype=dtype, device=device, template=template)  # the retain AUC, cached
        bundle = load_bundle(model, dtype=dtype, device=device, template=template)
        evaluator = MuseEvaluator(bundle.tokenizer, bundle.template, cfg, corpus=corpus, source=muse_source,
                                  reference_auc=ref_auc, device=device)
        kind = "muse"
    else:
        source: str | Path = data or (tofu_mini_source(model) if benchmark == "tofu-mini" else "locuslab/TOFU")
        common.update(forget_split=forget_split, question_key=question_key)
        if max_new_tokens is not None:
            common["max_new_tokens"] = max_new_tokens
        cfg = parse_config(EvalConfig, common, where="unlearn-sweep eval")
        reference = reference_for(cfg, source, retain_logs=retain_logs, retain_model=retain_model, dtype=dtype,
                                  device=device, template=template)
        if reference is None:
            log("no --retain-logs / --retain-model: forget_quality is None and privleak uses AUC_ref = 0.5")
        bundle = load_bundle(model, dtype=dtype, device=device, template=template)
        evaluator = TofuEvaluator(bundle.tokenizer, bundle.template, cfg, source, reference, device=device)
        kind = "tofu"
    results = evaluator.evaluate(bundle.model)
    eval_path, summary_path = evaluator.write(results, out)
    wall = time.perf_counter() - t0
    shown = [m for m in HEADLINE[kind] if m in results]
    log(summary_table({model: results}, shown))
    log(f"wrote {eval_path} and {summary_path} ({wall:.1f}s)")
    return results


def register(app: typer.Typer) -> None:
    @app.command("eval", epilog=EXAMPLES)
    def eval_command(
        model: str = typer.Argument(..., help="Zoo name (tofu-mini/target), local model folder or hub id."),
        out: Path = typer.Option(..., help="Output folder for <BENCH>_EVAL.json and <BENCH>_SUMMARY.json."),
        benchmark: str = typer.Option("tofu-mini", help=f"One of {', '.join(BENCHMARKS)}."),
        data: Optional[str] = typer.Option(None, help="Local data folder (default: the zoo's tofu-mini, or the hub)."),
        forget_split: str = typer.Option("forget10", help="TOFU forget split: forget01, forget05 or forget10."),
        retain_logs: Optional[str] = typer.Option(None, help="Retain model's TOFU_EVAL.json / MUSE_EVAL.json (file "
                                                 "or folder)."),
        retain_model: Optional[str] = typer.Option(None, help="Retain model to evaluate once (cached) as reference."),
        metrics: Optional[str] = typer.Option(None, help="Comma-separated subset of metrics (default: all)."),
        max_new_tokens: Optional[int] = typer.Option(None, help="Greedy generation length (TOFU default 200)."),
        question_key: str = typer.Option("question", help="Forget question field, e.g. paraphrased_question."),
        template: Optional[str] = typer.Option(None, help="Prompt template family when the name does not tell it."),
        dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
        device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
        batch_tokens: int = typer.Option(8192, help="Padded tokens per scoring batch (memory knob)."),
        generation_batch_size: int = typer.Option(64, help="Prompts per generation batch."),
        gibberish: str = typer.Option("offline", help="Gibberish detector: offline or hub."),
    ) -> None:
        """Evaluate one model (all TOFU or MUSE metrics, or a subset) and write open-unlearning-layout logs."""
        run_eval(model, benchmark=benchmark, out=out, data=data, forget_split=forget_split, retain_logs=retain_logs,
                 retain_model=retain_model, metrics=metrics, max_new_tokens=max_new_tokens,
                 question_key=question_key, template=template, dtype=dtype, device=device,
                 batch_tokens=batch_tokens, generation_batch_size=generation_batch_size, gibberish=gibberish,
                 log=typer.echo)
