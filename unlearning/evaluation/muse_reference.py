"""The retain model's MUSE reference (its min-k AUC, what privleak is relative to), computed once and cached.

MUSE's privleak compares the unlearned model's min-k AUC (privleak/forget vs privleak/holdout) with the
retrained model's. It comes from a stored `MUSE_EVAL.json` (`retain_logs`, e.g. open-unlearning's
`saves/eval/muse_<model>_retrain`) or from evaluating the retain model once here: the result is written in
open-unlearning's layout to a cache folder keyed by everything it depends on (model weights, data files, corpus,
max_length, k, template, dtype), so a sweep, and every later sweep on the same setup, evaluates it once.

    auc, folder = muse_reference(cfg, "news", source, retain_model="muse-mini/retain")
    auc, folder = muse_reference(cfg, "news", source, retain_logs="saves/eval/muse_retrain/MUSE_EVAL.json")
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from unlearning.errors import ConfigError
from unlearning.evaluation.config import MuseEvalConfig
from unlearning.evaluation.muse_eval import load_muse_reference_auc
from unlearning.evaluation.reference import _fingerprint
from unlearning.paths import cache_root

logger = logging.getLogger(__name__)


def muse_reference_key(model_path: str, source: Any, corpus: str, config: MuseEvalConfig, template_family: str,
                       dtype: str) -> str:
    """Hash of everything the retain model's min-k AUC depends on."""
    src = Path(str(source))
    privleak = src / "privleak" if src.is_dir() else src
    blob = {"model": model_path, "model_files": _fingerprint(Path(model_path)),
            "source": str(src.resolve()) if src.exists() else str(source), "data_files": _fingerprint(privleak),
            "corpus": corpus, "max_length": config.max_length, "mia_k": config.mia_k, "template": template_family,
            "dtype": dtype, "attention_from_pad_id": config.attention_from_pad_id, "benchmark": "muse", "version": 1}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def compute_muse_reference(retain_model: str, config: MuseEvalConfig, corpus: str, source: Any, *,
                           dtype: str = "float32", device: str = "cpu", cache_dir: str | Path | None = None,
                           template: str | None = None) -> Path:
    """Evaluate the retain model's min-k AUC once (cached); returns the folder holding its MUSE_EVAL.json."""
    from unlearning.data.templates import get_template
    from unlearning.evaluation.muse_eval import MuseEvaluator
    from unlearning.models.loading import load_bundle, resolve_model_path, template_for

    model_path = resolve_model_path(retain_model)
    family = get_template(template).family if template else template_for(retain_model).family
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "eval_references"
    target = folder / f"muse-{muse_reference_key(model_path, source, corpus, config, family, dtype)}"
    if (target / "MUSE_EVAL.json").is_file():
        logger.info("MUSE retain reference for %s read from the cache %s", retain_model, target)
        return target
    bundle = load_bundle(retain_model, dtype=dtype, device=device, template=template)
    ref_cfg = config.model_copy(update={"metrics": ["mia_min_k"]})
    evaluator = MuseEvaluator(bundle.tokenizer, bundle.template, ref_cfg, corpus=corpus, source=source, device=device)
    evaluator.write(evaluator.evaluate(bundle.model), target)
    (target / "reference.json").write_text(json.dumps({"retain_model": retain_model, "model_path": model_path,
                                                       "source": str(source), "corpus": corpus}, indent=2) + "\n")
    logger.info("MUSE retain reference for %s computed and cached in %s", retain_model, target)
    return target


def muse_reference(config: MuseEvalConfig, corpus: str, source: Any, *, retain_logs: str | Path | None = None,
                   retain_model: str | None = None, dtype: str = "float32", device: str = "cpu",
                   cache_dir: str | Path | None = None, template: str | None = None) -> tuple[float | None, str | None]:
    """(the retain model's min-k AUC, the folder of its MUSE_EVAL.json), from `retain_logs`, else computed from
    `retain_model`, else (None, None): privleak is then relative to 0.5, as the evaluator's default."""
    if retain_logs is not None and retain_model is not None:
        raise ConfigError("eval", field="retain_logs", value=str(retain_logs),
                          fix="give either retain_logs or retain_model, not both")
    if retain_logs is not None:
        path = Path(retain_logs)
        return load_muse_reference_auc(path), str(path if path.is_dir() else path.parent)
    if retain_model is not None:
        folder = compute_muse_reference(retain_model, config, corpus, source, dtype=dtype, device=device,
                                        cache_dir=cache_dir, template=template)
        return load_muse_reference_auc(folder), str(folder)
    return None, None
