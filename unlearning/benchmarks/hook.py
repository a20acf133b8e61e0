"""The evaluation hook of `unlearn-sweep train` (and of every sweep trial): the hook of the run's `data.benchmark`.

`unlearning.train.run` calls `make_train_eval_hook(config, bundle)` when the train config has
`eval.enabled: true`; the benchmark's own `eval_hook` prepares its data, tokenisation and retain reference once
(TOFU: `tofu.py`, EvalConfig settings; MUSE: `muse.py`, MuseEvalConfig; LKF: `lkf.py`, LkfEvalConfig) and each
call returns the flat {metric: aggregate} dict. `eval.settings` may name the retain reference (`retain_logs`: a
retain model's stored evaluation, or `retain_model`: evaluated once, then cached); for zoo models without either
the zoo's retain model is used (tofu-mini/target + forget10 -> tofu-mini/retain90, muse-mini/target ->
muse-mini/retain).

    eval:
      enabled: true
      settings: {metrics: [forget_quality, model_utility, forget_Q_A_gibberish], max_new_tokens: 64}

    hook = make_train_eval_hook(config, bundle); hook(model, 1.0)   # {"forget_quality": ..., ...}
"""

from __future__ import annotations

from typing import Any, Callable

from unlearning.benchmarks.registry import get_benchmark


def retain_model_for(config: Any) -> str | None:
    """The retain model a train config is evaluated against: `eval.settings.retain_model`, else the zoo's own
    (tofu-mini/retain90 for forget10, muse-mini/retain), else None."""
    if config.eval.settings.get("retain_model"):
        return config.eval.settings["retain_model"]
    return get_benchmark(config.data.benchmark).retain_model_for(config)


def make_train_eval_hook(config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
    """hook(model, epoch) -> {metric: aggregate} for the train config's model, data and eval settings."""
    return get_benchmark(config.data.benchmark).eval_hook(config, bundle)
