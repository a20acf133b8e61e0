"""The evaluation of a run: the hook of `unlearn-sweep train` (and of every sweep trial) and the sweep driver's
evaluation of the target, each the run's `data.benchmark`'s own with the add-on benchmarks' blocks beside it.

`unlearning.train.run` calls `make_train_eval_hook(config, bundle)` when the train config has
`eval.enabled: true`; the benchmark's `eval_hook` prepares its data, tokenisation and retain reference once
(TOFU: `tofu.py`, EvalConfig settings; MUSE: `muse.py`, MuseEvalConfig; LKF: `lkf.py`, LkfEvalConfig; WMDP:
`wmdp.py`, its `lm_eval:` block) and each call returns the flat {metric: aggregate} dict. An add-on's block of
`eval.settings` (WMDP's `lm_eval:` in another benchmark's run) is taken out before, and its evaluator's metrics
are merged in. `eval.settings` may name the retain
reference (`retain_logs`: a retain model's stored evaluation, or `retain_model`: evaluated once, then cached);
for zoo models without either the zoo's retain model is used (tofu-mini/target + forget10 ->
tofu-mini/retain90, muse-mini/target -> muse-mini/retain).

    eval:
      enabled: true
      settings: {metrics: [forget_quality, model_utility, forget_Q_A_gibberish], max_new_tokens: 64,
                 lm_eval: {tasks: [wmdp_mini, mmlu_mini]}}

    hook = make_train_eval_hook(config, bundle); hook(model, 1.0)   # {"forget_quality": ..., "wmdp_mini_acc": ...}
    ev = prepare_evaluation(config, bundle, retain_model="tofu-mini/retain90", cache_dir=...)   # the driver's
"""

from __future__ import annotations

from typing import Any, Callable

from unlearning.benchmarks.base import Evaluation
from unlearning.benchmarks.registry import addon_blocks, get_benchmark


def retain_model_for(config: Any) -> str | None:
    """The retain model a train config is evaluated against: `eval.settings.retain_model`, else the zoo's own
    (tofu-mini/retain90 for forget10, muse-mini/retain), else None."""
    if config.eval.settings.get("retain_model"):
        return config.eval.settings["retain_model"]
    return get_benchmark(config.data.benchmark).retain_model_for(config)


def _with_addons(config: Any, bundle: Any) -> tuple[Any, list[Any]]:
    """(the config without the add-ons' blocks in eval.settings, their evaluators on the run's data)."""
    settings, found = addon_blocks(config.eval.settings, where="train config: eval.settings",
                                   own=config.data.benchmark)
    if not found:
        return config, []
    config = config.model_copy(update={"eval": config.eval.model_copy(update={"settings": settings})})
    source = get_benchmark(config.data.benchmark).source(config.data, config.model.name)
    split = settings.get("forget_split", config.data.forget_split)
    return config, [(bench, block, source, split) for bench, block in found]


def make_train_eval_hook(config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
    """hook(model, epoch) -> {metric: aggregate} for the train config's model, data and eval settings."""
    config, found = _with_addons(config, bundle)
    hook = get_benchmark(config.data.benchmark).eval_hook(config, bundle)
    if not found:
        return hook
    extra = [bench.addon(block, bundle.tokenizer, source, split) for bench, block, source, split in found]

    def with_addons(model: Any, epoch: float) -> dict[str, Any]:
        out = hook(model, epoch)
        for ev in extra:
            out.update(ev.evaluate(model))
        return out

    return with_addons


def prepare_evaluation(config: Any, bundle: Any, **reference: Any) -> Evaluation:
    """The sweep driver's evaluation of the target (epoch 0) with its retain reference (`retain_logs`,
    `retain_model`, `cache_dir`), the add-ons' metrics merged in."""
    config, found = _with_addons(config, bundle)
    own = get_benchmark(config.data.benchmark).evaluation(config, bundle, **reference)
    if not found:
        return own

    def evaluate(model: Any) -> dict[str, Any]:
        out = own.evaluate(model)
        for bench, block, source, split in found:  # built when the target is evaluated (not when it is cached)
            out.update(bench.addon(block, bundle.tokenizer, source, split).evaluate(model))
        return out

    return Evaluation(evaluate=evaluate, reference_dir=own.reference_dir)
