"""The retain model's reference statistics (forget_quality, privleak), loaded from a log or computed once.

forget_quality needs the retain model's per-item truth ratios on the forget split and privleak its
min-k AUC (docs/methods.md, "TOFU headline metrics" and "Extraction strength, membership
inference and privleak"). They come either from a stored open-unlearning / our own
`TOFU_EVAL.json` (`load_reference`), or from running the retain model once (`compute_reference`); the
computed statistics are written in OU's layout to a cache folder keyed by everything they depend on
(model weights, data files, split, question key, template, max_length, k), so a sweep — and every later
sweep on the same setup — evaluates the retain model once.

    ref = load_reference("/work/shared/data/tofu/reference_eval_logs/tofu_Llama-2-7b-chat-hf_retain90")
    ref = reference_for(cfg, source, retain_model="tofu-mini/retain90")     # computed once, then cached
    ref.truth_ratios, ref.mia_auc
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any


from unlearning.errors import ConfigError
from unlearning.evaluation.config import EvalConfig
from unlearning.metrics.reference_logs import RetainReference, load_reference  # noqa: F401  (re-exported)
from unlearning.metrics.report import write_report
from unlearning.paths import cache_root

logger = logging.getLogger(__name__)
REFERENCE_METRICS = ["forget_truth_ratio", "mia_min_k"]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json")


def _fingerprint(path: Path) -> list[Any]:
    """(name, size, mtime) of the files that determine a model / data folder (cheap staleness check)."""
    if path.is_file():
        st = path.stat()
        return [[path.name, st.st_size, st.st_mtime_ns]]
    if not path.is_dir():
        return [str(path)]
    out = []
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.suffix == ".jsonl"):
            st = f.stat()
            out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def reference_key(model_path: str, source: str | Path, config: EvalConfig, template_family: str, dtype: str) -> str:
    """Hash of everything the reference statistics depend on."""
    src = Path(str(source))
    blob = {
        "model": model_path, "model_files": _fingerprint(Path(model_path)),
        "source": str(src.resolve()) if src.exists() else str(source), "data_files": _fingerprint(src),
        "forget_split": config.forget_split, "holdout": config.holdout(), "question_key": config.question_key,
        "max_length": config.max_length, "mia_k": config.mia_k, "template": template_family, "dtype": dtype,
        "attention_from_pad_id": config.attention_from_pad_id, "version": 1,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def compute_reference(retain_model: str, config: EvalConfig, source: str | Path, *, dtype: str = "float32",
                      device: str = "cpu", cache_dir: str | Path | None = None,
                      template: str | None = None) -> RetainReference:
    """Evaluate the retain model once (forget truth ratios + min-k) and cache the result; reuse the cache."""
    from unlearning.data.templates import get_template
    from unlearning.evaluation.tofu_eval import TofuEvaluator
    from unlearning.models.loading import load_bundle, resolve_model_path, template_for

    model_path = resolve_model_path(retain_model)
    family = get_template(template).family if template else template_for(retain_model).family
    key = reference_key(model_path, source, config, family, dtype)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "eval_references"
    target = folder / key
    if (target / "TOFU_EVAL.json").is_file():
        logger.info("retain reference for %s read from the cache %s", retain_model, target)
        return load_reference(target)
    bundle = load_bundle(retain_model, dtype=dtype, device=device, template=template)
    ref_cfg = config.model_copy(update={"metrics": list(REFERENCE_METRICS)})
    results = TofuEvaluator(bundle.tokenizer, bundle.template, ref_cfg, source, device=device).evaluate(bundle.model)
    write_report(target, results)
    (target / "reference.json").write_text(json.dumps({"retain_model": retain_model, "model_path": model_path,
                                                       "source": str(source)}, indent=2) + "\n")
    logger.info("retain reference for %s computed and cached in %s", retain_model, target)
    return load_reference(target)


def reference_for(config: EvalConfig, source: str | Path, *, retain_logs: str | Path | None = None,
                  retain_model: str | None = None, dtype: str = "float32", device: str = "cpu",
                  cache_dir: str | Path | None = None, template: str | None = None) -> RetainReference | None:
    """The reference from `retain_logs`, else computed from `retain_model`, else None (forget_quality None)."""
    if retain_logs is not None and retain_model is not None:
        raise ConfigError("eval", field="retain_logs", value=str(retain_logs),
                          fix="give either retain_logs or retain_model, not both")
    if retain_logs is not None:
        return load_reference(retain_logs)
    if retain_model is not None:
        return compute_reference(retain_model, config, source, dtype=dtype, device=device, cache_dir=cache_dir,
                                 template=template)
    return None
