"""MUSE in a run: the evaluation `unlearn-sweep train` (and every sweep trial) runs when `data.benchmark: muse`.

`unlearning.evaluation.train_hook` dispatches here on the benchmark. `eval.settings` holds MuseEvalConfig fields
(metrics, knowmem/verbmem token budgets, batching, gibberish, ...) plus one of the two reference keys:
`retain_logs` (a retain model's MUSE_EVAL.json or its folder) or `retain_model` (evaluated once, its min-k AUC
cached: `muse_reference`). For muse-mini zoo models without either, the zoo's retain model is used
(muse-mini/target -> muse-mini/retain); elsewhere privleak is relative to 0.5. The corpus and source are the
data section's (`max_length` here truncates the evaluated texts, 2048 as open-unlearning; `data.max_length` is
the training chunk length). Each evaluation returns the flat
{metric: value} dict with the short names (gibberish_rate = the flagged share of verbmem generations).

    ev = muse_evaluation(config, bundle, retain_model="muse-mini/retain")
    ev.evaluate(model)              # {"forget_knowmem_ROUGE": 0.41, "retain_knowmem_ROUGE": ..., "privleak": ...}
    ev.reference_dir                # the folder of the retain model's MUSE_EVAL.json (trials load it)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from unlearning.evaluation.config import MuseEvalConfig, flat_metrics, parse_config

REFERENCE_KEYS = ("retain_logs", "retain_model")


@dataclass
class Evaluation:
    """A prepared evaluation: `evaluate(model)` -> flat metrics; `reference_dir`: the retain reference's folder."""

    evaluate: Callable[[Any], dict[str, Any]]
    reference_dir: str | None


def muse_settings(config: Any) -> tuple[MuseEvalConfig, dict[str, Any]]:
    """(the validated MUSE settings of a train config, its reference keys)."""
    settings = dict(config.eval.settings)
    refs = {k: settings.pop(k, None) for k in REFERENCE_KEYS}
    return parse_config(MuseEvalConfig, settings, where="train config: eval.settings"), refs


def default_muse_retain_model(model_name: str) -> str | None:
    """muse-mini[-<size>]/target -> muse-mini[-<size>]/retain; None for other models."""
    from unlearning.models.muse_zoo import parse_muse_zoo_name

    return f"{model_name.split('/', 1)[0]}/retain" if parse_muse_zoo_name(model_name) is not None else None


def muse_evaluation(config: Any, bundle: Any, *, retain_logs: str | None = None, retain_model: str | None = None,
                    cache_dir: Any = None, dtype: str = "float32", device: str = "cpu",
                    template: str | None = None) -> Evaluation:
    """The MUSE evaluation of a train config's data and settings (reference keys given here, not in settings)."""
    from unlearning.evaluation.muse_eval import MuseEvaluator
    from unlearning.evaluation.muse_reference import muse_reference
    from unlearning.train.data import data_source

    cfg, _ = muse_settings(config)
    source = data_source(config.data, config.model.name)
    auc, folder = muse_reference(cfg, config.data.corpus, source, retain_logs=retain_logs, retain_model=retain_model,
                                 dtype=dtype, device=device, cache_dir=cache_dir, template=template)
    evaluator = MuseEvaluator(bundle.tokenizer, bundle.template, cfg, corpus=config.data.corpus, source=source,
                              reference_auc=auc, device=device)
    return Evaluation(evaluate=lambda model: flat_metrics(evaluator.evaluate(model), "muse"), reference_dir=folder)


def make_muse_eval_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    """hook(model, epoch) -> flat MUSE metrics, for `make_train_eval_hook` (see the module docstring)."""
    from unlearning.train.run import resolve_dtype

    _, refs = muse_settings(config)
    if refs["retain_logs"] is None and refs["retain_model"] is None:
        refs["retain_model"] = default_muse_retain_model(config.model.name)
    device = str(next(bundle.model.parameters()).device)
    ev = muse_evaluation(config, bundle, retain_logs=refs["retain_logs"], retain_model=refs["retain_model"],
                         dtype=resolve_dtype(config.model.dtype), device=device, template=config.model.template)
    return lambda model, epoch: ev.evaluate(model)
