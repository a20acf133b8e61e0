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

The hook follows `data.benchmark`: TOFU's is below; the others' are in `BENCHMARK_HOOKS` (MUSE:
`muse_hook.make_muse_eval_hook`, MuseEvalConfig settings; LKF: `lkf_eval.make_lkf_eval_hook`, LkfEvalConfig
settings; `BENCHMARK_EVALUATIONS` prepares the same evaluation
for the sweep driver, which evaluates the target once and shares the retain reference with every trial).
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


def _muse_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    from unlearning.evaluation.muse_hook import make_muse_eval_hook

    return make_muse_eval_hook(config, bundle)


def _muse_evaluation(config: Any, bundle: Any, **kwargs: Any) -> Any:
    from unlearning.evaluation.muse_hook import muse_evaluation

    return muse_evaluation(config, bundle, **kwargs)


def _lkf_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    from unlearning.evaluation.lkf_eval import make_lkf_eval_hook

    return make_lkf_eval_hook(config, bundle)


def _lkf_evaluation(config: Any, bundle: Any, **kwargs: Any) -> Any:
    from unlearning.evaluation.lkf_eval import lkf_evaluation

    return lkf_evaluation(config, bundle, **kwargs)


def retain_model_for(config: Any) -> str | None:
    """The retain model a train config is evaluated against: `eval.settings.retain_model`, else the zoo's own
    (tofu-mini/retain90 for forget10, muse-mini/retain), else None."""
    if config.eval.settings.get("retain_model"):
        return config.eval.settings["retain_model"]
    if config.data.benchmark == "muse":
        from unlearning.evaluation.muse_hook import default_muse_retain_model

        return default_muse_retain_model(config.model.name)
    if config.data.benchmark == "lkf":
        return None  # LKF has no retain model
    return default_retain_model(config.model.name, config.data.forget_split)


# data.benchmark -> its hook factory (config, bundle) -> hook(model, epoch); "tofu" is make_train_eval_hook's own
BENCHMARK_HOOKS: dict[str, Callable[[Any, Any], Callable[[Any, int], dict[str, Any]]]] = {"muse": _muse_hook,
                                                                                          "lkf": _lkf_hook}
# data.benchmark -> (config, bundle, retain_logs=, retain_model=, cache_dir=) -> Evaluation(evaluate, reference_dir)
BENCHMARK_EVALUATIONS: dict[str, Callable[..., Any]] = {"muse": _muse_evaluation, "lkf": _lkf_evaluation}


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

    if config.data.benchmark in BENCHMARK_HOOKS:
        return BENCHMARK_HOOKS[config.data.benchmark](config, bundle)

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
