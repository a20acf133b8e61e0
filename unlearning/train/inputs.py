"""A run's inputs that do not depend on its hyperparameters, computed once: the tokenised forget/retain (and IDK)
examples and the frozen initial model's reference log-probs (NPO, TNPO, IdkDPO).

    data = run_inputs(config, bundle, method, source)                      # tokenise + reference forward
    data = run_inputs(config, bundle, method, source, cache_dir="sweep/shared/inputs")   # the same, cached

With `cache_dir` the result is stored under a content address (a hash of the model, its tokenizer and
template, the data section, the IDK draw seed and the reference keys): the sweep driver computes it once per
search and every trial of the search loads it instead of tokenising and running the reference forward again.
A file is written atomically; a damaged one is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from unlearning.methods.base import UnlearningMethod
from unlearning.train.data import ForgetRetainDataset, load_forget_retain

FORMAT = 1


def inputs_key(config: Any, source: Any, ref_keys: tuple[str, ...], with_idk: bool) -> str:
    """The content address of a run's inputs (see the module docstring)."""
    from unlearning.models.loading import resolve_model_path

    blob = json.dumps({"format": FORMAT, "model": config.model.model_dump(mode="json"),
                       "model_path": resolve_model_path(config.model.name), "data": config.data.model_dump(mode="json"),
                       "source": str(source), "ref_keys": sorted(ref_keys), "idk": with_idk,
                       "seed": config.train.seed if with_idk else None}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _build(config: Any, bundle: Any, method: UnlearningMethod, source: Any, rank: int) -> ForgetRetainDataset:
    data = load_forget_retain(config.data, bundle.tokenizer, bundle.template, source,
                              with_idk="idk" in method.needs_ref_logps, seed=config.train.seed, rank=rank)
    if method.needs_ref_logps:
        data.attach_ref_logps(bundle.model, keys=method.needs_ref_logps)
    return data


def run_inputs(config: Any, bundle: Any, method: UnlearningMethod, source: Any, cache_dir: str | Path | None = None,
               rank: int = 0) -> ForgetRetainDataset:
    """The run's ForgetRetainDataset with its reference log-probs, from `cache_dir` when it holds them."""
    if cache_dir is None:
        return _build(config, bundle, method, source, rank)
    keys = tuple(method.needs_ref_logps)
    path = Path(cache_dir) / f"inputs-{inputs_key(config, source, keys, 'idk' in keys)}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
            data = ForgetRetainDataset(saved["forget"], saved["retain"], bundle.tokenizer.pad_token_id,
                                       idk=saved["idk"], seed=config.train.seed, rank=rank)
            data.ref_logps = saved["ref_logps"]
            return data
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt below
            pass
    data = _build(config, bundle, method, source, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"forget": data.forget, "retain": data.retain, "idk": data.idk, "ref_logps": data.ref_logps}, tmp)
    os.replace(tmp, path)
    return data
