"""The evaluation hook of `unlearn-sweep train`: TOFU metrics at the start and after every epoch.

`unlearning.train.run` calls `make_train_eval_hook(config, bundle)` when the train config has
`eval.enabled: true`. `eval.settings` holds EvalConfig fields (metrics, max_new_tokens, batching, ...)
plus two reference keys: `retain_logs` (a retain model's TOFU_EVAL.json) or `retain_model` (evaluated
once, then cached). For zoo models without either, the zoo's retain model of the forget split is used
(tofu-mini/target + forget10 -> tofu-mini/retain90). The data, tokenisation and reference are prepared
once; each call returns the flat {metric: aggregate} dict. Robustness metrics (`robust_eval.py`) selected in
`metrics` are added, the relearning attack at the points `robustness.relearn.every` names. An `lm_eval:` block
(`wmdp_eval.py`: WMDP / MMLU / wmdp-mini through lm-evaluation-harness) adds its `<task>_<metric>` entries.

    eval:
      enabled: true
      settings: {metrics: [forget_quality, model_utility, forget_Q_A_gibberish], max_new_tokens: 64}
"""

from __future__ import annotations

from typing import Any, Callable

from unlearning.evaluation.config import EvalConfig, parse_config
from unlearning.evaluation.reference import reference_for
from unlearning.evaluation.robust_eval import attack_schedule, tofu_robustness, with_robustness
from unlearning.evaluation.tofu_eval import TofuEvaluator
from unlearning.evaluation.wmdp_eval import LmEvalEvaluator, split_settings
from unlearning.metrics.report import summarize, to_jsonable

REFERENCE_KEYS = ("retain_logs", "retain_model")


def default_retain_model(model_name: str, forget_split: str) -> str | None:
    """The zoo's retain model for a zoo model name (None for other models)."""
    from unlearning.data.tofu import retain_split_for
    from unlearning.models.zoo import parse_zoo_name

    if parse_zoo_name(model_name) is None:
        return None
    return f"{model_name.split('/', 1)[0]}/{retain_split_for(forget_split)}"


def train_attack_schedule(config: Any, ev_cfg: Any) -> Callable[[float], bool]:
    """Which evaluation points of this run get the relearning attack (`robustness.relearn.every`): the start,
    the last point (`train.stop_after_epoch` or `train.epochs`) and every k-th point in between."""
    if config.train.zero_stage == 3 and any(m.endswith("_relearn") for m in ev_cfg.selected()):
        from unlearning.errors import ConfigError

        raise ConfigError("train config", field="train.zero_stage", value=3,
                          fix="the relearning attack fine-tunes a copy of the module, which ZeRO-3 partitions: "
                              "use zero_stage 0-2 or drop the *_relearn metrics")
    final = config.train.stop_after_epoch or config.train.epochs
    return attack_schedule(config.eval.every, final, ev_cfg.robustness.relearn.every)


def make_train_eval_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    """hook(model, epoch) -> {metric: aggregate} for the train config's model, data and eval settings."""
    from unlearning.train.run import resolve_dtype, resolve_source

    settings, lm_cfg = split_settings(config.eval.settings, where="train config: eval.settings")
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
    evaluator = with_robustness(evaluator, tofu_robustness(evaluator, ev_cfg, source, config.data.retain_split,
                                                           attack_at=train_attack_schedule(config, ev_cfg)))
    mc = None if lm_cfg is None else LmEvalEvaluator(lm_cfg, bundle.tokenizer, source, ev_cfg.forget_split)

    def hook(model: Any, epoch: int) -> dict[str, Any]:
        out = to_jsonable(summarize(evaluator.evaluate(model, epoch)))
        return out if mc is None else {**out, **mc.evaluate(model)}

    return hook
