"""Model-running evaluation: TOFU / MUSE evaluators, batched scoring, KV-cache generation, gibberish, robustness.

    from unlearning.evaluation.tofu_eval import TofuEvaluator
    ev = TofuEvaluator(tokenizer, template, EvalConfig(), source="/path/to/tofu-mini", reference=ref)
    results = ev.evaluate(model)        # OU layout; ev.write(results, out_dir)

Modules: config (validated settings), tofu_plan (metric -> needed model outputs), scoring (teacher-forced
per-item statistics) with packing (a question's answers share one row), generation (greedy decoding,
KV cache), tofu_eval / muse_eval (the evaluators), reference (retain-model statistics, cached),
gibberish (offline detector + hub classifier), robustness (paraphrase worst case, relearning attack).
The per-epoch hook of `unlearn-sweep train` is `unlearning.benchmarks.hook` (it picks the run's benchmark).
"""
