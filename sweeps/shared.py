"""What every trial of a search shares, prepared once by the sweep driver (design.md, data-flow step 3).

* the retain model's reference statistics (per-item forget truth ratios, min-k AUC) behind forget_quality
  and privleak: read from stored open-unlearning logs or computed once from the retain model, cached in
  `<sweep>/shared/<model>/reference_cache` (trials only load it);
* the run's inputs: the tokenised forget/retain examples and the initial model's reference log-probs
  (`unlearning.train.inputs`), stored under a content address in `<sweep>/shared/inputs` that every trial
  loads;
* the target model's own evaluation (epoch 0): the reference point of constraints such as
  `model_utility >= 0.9 * target`, evaluated once per model instead of once per trial.

    shared = prepare_shared(spec, plan)          # SharedWork(reference_dir, inputs_dir, target_metrics)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class SharedWork:
    reference_dir: str | None
    inputs_dir: str
    target_metrics: dict[str, float]


def prepare_shared(spec: Any, plan: Any, log=print) -> SharedWork:
    """Compute (or reuse from `<sweep>/shared/`) the shared work of one search."""
    from unlearning.evaluation.config import EvalConfig, flat_metrics, parse_config
    from unlearning.evaluation.reference import reference_for
    from unlearning.evaluation.robust_eval import tofu_robustness, with_robustness
    from unlearning.evaluation.tofu_eval import TofuEvaluator
    from unlearning.evaluation.wmdp_eval import LmEvalEvaluator, split_settings
    from unlearning.models.loading import load_bundle
    from unlearning.train.config import TrainConfig
    from unlearning.train.inputs import run_inputs
    from unlearning.train.run import build_run_method, resolve_dtype, resolve_source

    config = TrainConfig.model_validate(plan.base)
    model = plan.model
    if config.data.benchmark != "tofu":  # MUSE, ...: the benchmark's own evaluation (train_hook's table)
        return _prepare_shared_benchmark(spec, plan, config, log)
    source = resolve_source(config.data.source, config.model.name)
    settings = {k: v for k, v in config.eval.settings.items() if k not in ("retain_model", "retain_logs")}
    settings, lm_cfg = split_settings(settings)  # the lm-eval block (wmdp_eval.py), evaluated beside TOFU's
    cfg = parse_config(EvalConfig, settings, where="eval.settings")
    shared = spec.sweep_dir() / "shared" / model.name.replace("/", "__")
    shared.mkdir(parents=True, exist_ok=True)
    reference = None
    if model.retain_logs or model.retain_model:
        reference = reference_for(cfg, source, retain_logs=model.retain_logs, retain_model=model.retain_model,
                                  cache_dir=shared / "reference_cache")
        log(f"retain reference for {model.name}: {model.retain_logs or model.retain_model}")
    bundle = load_bundle(config.model.name, dtype=resolve_dtype(config.model.dtype),
                         template=config.model.template)
    inputs_dir = spec.sweep_dir() / "shared" / "inputs"
    run_inputs(config, bundle, build_run_method(config, bundle.tokenizer), source, cache_dir=inputs_dir)
    target_file = shared / "target_metrics.json"
    if target_file.is_file():
        target = json.loads(target_file.read_text())
    else:
        ev = TofuEvaluator(bundle.tokenizer, bundle.template, cfg, source, reference=reference)
        ev = with_robustness(ev, tofu_robustness(ev, cfg, source, config.data.retain_split))  # attacked at epoch 0
        target = {k: v for k, v in flat_metrics(ev.evaluate(bundle.model, 0)).items() if v is not None}
        if lm_cfg is not None:
            target.update(LmEvalEvaluator(lm_cfg, bundle.tokenizer, source, cfg.forget_split).evaluate(bundle.model))
        target_file.write_text(json.dumps(target, indent=1) + "\n")
        log(f"target model {model.name} evaluated once (epoch 0)")
    return SharedWork(reference_dir=reference.source if reference is not None else None,
                      inputs_dir=str(inputs_dir), target_metrics=target)


def _prepare_shared_benchmark(spec: Any, plan: Any, config: Any, log=print) -> SharedWork:
    """The same shared work for a benchmark of `train_hook.BENCHMARK_EVALUATIONS` (MUSE): its retain reference
    (cached in `<sweep>/shared/<model>/reference_cache`), the inputs, the target's evaluation (epoch 0)."""
    from unlearning.evaluation.train_hook import BENCHMARK_EVALUATIONS
    from unlearning.models.loading import load_bundle
    from unlearning.train.data import data_source
    from unlearning.train.inputs import run_inputs
    from unlearning.train.run import build_run_method, resolve_dtype

    model = plan.model
    shared = spec.sweep_dir() / "shared" / model.name.replace("/", "__")
    shared.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(config.model.name, dtype=resolve_dtype(config.model.dtype), template=config.model.template)
    evaluation = BENCHMARK_EVALUATIONS[config.data.benchmark](
        config, bundle, retain_logs=model.retain_logs, retain_model=model.retain_model,
        cache_dir=shared / "reference_cache")
    if model.retain_logs or model.retain_model:
        log(f"retain reference for {model.name}: {model.retain_logs or model.retain_model}")
    inputs_dir = spec.sweep_dir() / "shared" / "inputs"
    run_inputs(config, bundle, build_run_method(config, bundle.tokenizer), data_source(config.data, model.name),
               cache_dir=inputs_dir)
    target_file = shared / "target_metrics.json"
    if target_file.is_file():
        target = json.loads(target_file.read_text())
    else:
        target = {k: v for k, v in evaluation.evaluate(bundle.model).items() if v is not None}
        target_file.write_text(json.dumps(target, indent=1) + "\n")
        log(f"target model {model.name} evaluated once (epoch 0)")
    return SharedWork(reference_dir=evaluation.reference_dir, inputs_dir=str(inputs_dir), target_metrics=target)
