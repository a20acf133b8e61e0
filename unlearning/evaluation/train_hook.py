"""The evaluation hook of `unlearn-sweep train`: TOFU metrics at the start and after every epoch.

`unlearning.train.run` calls `make_train_eval_hook(config, bundle)` when the train config has
`eval.enabled: true`. `eval.settings` holds EvalConfig fields (metrics, max_new_tokens, batching, ...)
plus two reference keys: `retain_logs` (a retain model's TOFU_EVAL.json) or `retain_model` (evaluated
once, then cached). For zoo models without either, the zoo's retain model of the forget split is used
(tofu-mini/target + forget10 -> tofu-mini/retain90). The data, tokenisation and reference are prepared
once; each call returns the flat {metric: aggregate} dict.

    eval:
      enabled: true
      settings: {metrics: [forget_quality, model_utility, forget_Q_A_gibberish], max_new_tokens: 64}
"""

from __future__ import annotations

from typing import Any, Callable

from unlearning.evaluation.config import EvalConfig, parse_config
from unlearning.evaluation.reference import reference_for
from unlearning.evaluation.tofu_eval import TofuEvaluator
from unlearning.metrics.report import summarize, to_jsonable

REFERENCE_KEYS = ("retain_logs", "retain_model")


def default_retain_model(model_name: str, forget_split: str) -> str | None:
    """The zoo's retain model for a zoo model name (None for other models)."""
    from unlearning.data.tofu import retain_split_for
    from unlearning.models.zoo import parse_zoo_name

    if parse_zoo_name(model_name) is None:
        return None
    return f"{model_name.split('/', 1)[0]}/{retain_split_for(forget_split)}"


def make_train_eval_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    """hook(model, epoch) -> {metric: aggregate} for the train config's model, data and eval settings."""
    from unlearning.train.run import resolve_dtype, resolve_source

    settings = dict(config.eval.settings)
    refs = {k: settings.pop(k, None) for k in REFERENCE_KEYS}
    settings.setdefault("forget_split", config.data.forget_split)
    settings.setdefault("max_length", config.data.max_length)
    ev_cfg = parse_config(EvalConfig, settings, where="train config: eval.settings")
    source = resolve_source(config.data.source, config.model.name)
    if refs["retain_logs"] is None and refs["retain_model"] is None:
        refs["retain_model"] = default_retain_model(config.model.name, ev_cfg.forget_split)
    device = next(bundle.model.parameters()).device
    reference = reference_for(ev_cfg, source, retain_logs=refs["retain_logs"], retain_model=refs["retain_model"],
                              dtype=resolve_dtype(config.model.dtype), device=str(device),
                              template=config.model.template)
    evaluator = TofuEvaluator(bundle.tokenizer, bundle.template, ev_cfg, source, reference, device=str(device))

    def hook(model: Any, epoch: int) -> dict[str, Any]:
        return to_jsonable(summarize(evaluator.evaluate(model)))

    return hook
