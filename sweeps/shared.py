"""What every trial of a search shares, prepared once by the sweep driver (design.md, data-flow step 2).

* the benchmark source folder (tofu-mini: the prepared zoo's `data/`);
* the retain model's reference statistics (per-item forget truth ratios, min-k AUC) behind forget_quality
  and privleak: read from stored open-unlearning logs or computed once from the retain model, and cached
  in `<sweep>/shared/` (trials only load it);
* the target model's own evaluation (epoch 0): the reference point of constraints such as
  `model_utility >= 0.9 * target`, evaluated once per model instead of once per trial.

    shared = prepare_shared(spec, plan)          # SharedWork(source, reference_dir, target_metrics)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from unlearning.errors import ConfigError


@dataclass
class SharedWork:
    source: str
    reference_dir: str | None
    target_metrics: dict[str, float]


def benchmark_source(spec: Any, model_name: str) -> str:
    b = spec.benchmark
    if b.name == "tofu-mini":
        from unlearning.models.zoo import DEFAULT_SIZE, parse_zoo_name, zoo_data_dir

        parsed = parse_zoo_name(model_name)
        return str(zoo_data_dir(parsed[0].size if parsed else DEFAULT_SIZE))
    if b.name == "tofu":
        return "locuslab/TOFU" if b.source in (None, "hub") else b.source
    raise ConfigError("spec", field="benchmark.name", value=b.name,
                      fix="the sweep service runs TOFU-style benchmarks (tofu, tofu-mini) in this version")


def eval_config(spec: Any):
    from sweeps.trial_config import eval_section
    from unlearning.evaluation.config import EvalConfig

    return EvalConfig.model_validate(eval_section(spec)["settings"])


def prepare_shared(spec: Any, plan: Any, log=print) -> SharedWork:
    """Compute (or reuse from `<sweep>/shared/`) the shared work of one search's model."""
    from sweeps.results import flat_metrics
    from unlearning.evaluation.reference import reference_for
    from unlearning.evaluation.tofu_eval import TofuEvaluator
    from unlearning.models.loading import load_bundle

    model = plan.model
    source = benchmark_source(spec, model.name)
    cfg = eval_config(spec)
    shared = spec.sweep_dir() / "shared" / model.name.replace("/", "__")
    shared.mkdir(parents=True, exist_ok=True)
    reference = None
    if model.retain_logs or model.retain_model:
        # computed once and cached under <sweep>/shared/ (a second call, or a resumed sweep, reads the cache)
        reference = reference_for(cfg, source, retain_logs=model.retain_logs, retain_model=model.retain_model,
                                  cache_dir=shared / "reference_cache")
        log(f"retain reference for {model.name}: {model.retain_logs or model.retain_model}")
    target_file = shared / "target_metrics.json"
    if target_file.is_file():
        target = json.loads(target_file.read_text())
    else:
        bundle = load_bundle(model.name, dtype="float32" if spec.deepspeed.dtype == "auto" else spec.deepspeed.dtype)
        ev = TofuEvaluator(bundle.tokenizer, bundle.template, cfg, source, reference=reference)
        target = {k: v for k, v in flat_metrics(ev.evaluate(bundle.model)).items() if v is not None}
        target_file.write_text(json.dumps(target, indent=1) + "\n")
        log(f"target model {model.name} evaluated once (epoch 0)")
    return SharedWork(source=source, reference_dir=reference.source if reference is not None else None,
                      target_metrics=target)
