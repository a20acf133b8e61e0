"""What every trial of a search shares, prepared once by the sweep driver (docs/architecture.md, step 3).

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
    """Compute (or reuse from `<sweep>/shared/`) the shared work of one search: the benchmark's own evaluation
    (`unlearning.benchmarks.hook.prepare_evaluation`: its retain reference, cached in `<sweep>/shared/<model>/reference_cache`), the inputs
    and the target's evaluation (epoch 0)."""
    from unlearning.benchmarks.hook import prepare_evaluation
    from unlearning.models.loading import load_bundle, resolve_dtype
    from unlearning.train.config import TrainConfig
    from unlearning.train.data import data_source
    from unlearning.train.inputs import run_inputs
    from unlearning.train.run import build_run_method

    config = TrainConfig.model_validate(plan.base)
    model = plan.model
    shared = spec.sweep_dir() / "shared" / model.name.replace("/", "__")
    shared.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(config.model.name, dtype=resolve_dtype(config.model.dtype), template=config.model.template)
    evaluation = prepare_evaluation(config, bundle, retain_logs=model.retain_logs, retain_model=model.retain_model,
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
