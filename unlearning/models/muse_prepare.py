"""`unlearn-sweep prepare muse-mini`: write the muse-mini corpus and train its target and retain models, cached.

Steps (each skipped when its output is in the cache; a file lock makes concurrent prepares wait):
1. write muse-mini (`data/`, MUSE's layout) and train a byte-level BPE tokenizer on its text (`tokenizer/`);
2. train `target` on raw/forget + retain1 + retain2 and `retain` on retain1 + retain2 (MUSE's "retrain"
   model), both from the same random init, next-token loss on every token of one document per sequence, plus
   quiz sheets of their interview questions (`quiz_sheets`, see MuseTrainSettings), two at a time in worker
   processes (one thread each);
3. the memorisation table: each model's mean per-token probability of the raw forget, retain2 and holdout
   articles, kept in `manifest.json` with the timings.

    from unlearning.models.muse_prepare import prepare_muse
    manifest = prepare_muse(MuseZooConfig())            # target + retain; a no-op when cached
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

from unlearning.data.muse import load_muse
from unlearning.data.muse_mini import write as write_muse_mini
from unlearning.models.muse_zoo import (
    MUSE_TRAIN_SPLITS,
    MUSE_ZOO_MODELS,
    MuseZooConfig,
    muse_zoo_dir,
)
from unlearning.models.zoo_build import (build_locked, is_complete, on_disk, pick_models, read_manifest,
                                         train_in_workers, worker_layout, write_manifest)

MAX_LENGTH = 512  # the zoo models' positions; an article is ~250 tokens
MEMORISATION_SPLITS = ("forget", "retain2", "holdout")


def _texts(data_dir: Path, splits: Iterable[str]) -> list[str]:
    return [r["text"] for s in splits for r in load_muse("news", "raw", s, data_dir)]


def quiz_sheets(documents: Sequence[str], copies: int, sheet: int, seed: int) -> list[str]:
    """The interview QA turns of `documents` (those that start with a question), shuffled across documents
    `copies` times (seeded) and cut into sheets of `sheet` turns (see MuseTrainSettings)."""
    import random

    turns = [t for d in documents if d.startswith("Question: ") for t in d.split("\n\n")]
    rng, out = random.Random(seed), []
    for _ in range(copies):
        order = rng.sample(turns, len(turns))
        out += ["\n\n".join(order[i:i + sheet]) for i in range(0, len(order), sheet)]
    return out


def _train_one(root: str, cfg_json: str, name: str, threads: int) -> dict:
    """Worker: the shared random init -> next-token training on the model's articles -> save `name/`."""
    import torch

    from unlearning.data.tokenization import encode_text
    from unlearning.models.zoo_model import load_zoo_tokenizer, new_model, save_model
    from unlearning.models.sft import finetune_items

    torch.set_num_threads(threads)
    rootp, raw = Path(root), json.loads(cfg_json)
    cfg = raw["train"]
    tok = load_zoo_tokenizer(rootp)
    model = new_model(raw["size"], cfg["seed"], tok)
    docs = _texts(rootp / "data", MUSE_TRAIN_SPLITS[name])
    docs += quiz_sheets(docs, cfg["quiz_copies"], cfg["quiz_sheet"], cfg["seed"])
    items = [encode_text(tok, t, MAX_LENGTH) for t in docs]
    t0 = time.perf_counter()
    every = max(1, cfg["epochs"] // 4)

    def progress(epoch: int, loss: float) -> None:
        if epoch % every == 0 and epoch < cfg["epochs"]:
            spent = time.perf_counter() - t0
            print(f"  {name}: epoch {epoch}/{cfg['epochs']}, loss {loss:.3f}, about "
                  f"{spent * (cfg['epochs'] - epoch) / epoch:.0f}s left", flush=True)

    stats = finetune_items(model, items, tok.pad_token_id, epochs=cfg["epochs"], lr=cfg["lr"],
                           batch_size=cfg["batch_size"], seed=cfg["seed"], on_epoch=progress)
    stats["seconds"] = time.perf_counter() - t0
    save_model(model, tok, rootp / name, template="zoo")  # the zoo prompt template, as tofu-mini's models
    return stats


def text_probability(root: Path, name: str, texts: Sequence[str]) -> float:
    """Mean over texts of exp(-mean next-token NLL) under zoo model `name` (the memorisation measure)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from unlearning.data.collators import TrainCollator
    from unlearning.data.tokenization import encode_text
    from unlearning.metrics.primitives import avg_nll
    from unlearning.models.zoo_model import load_zoo_tokenizer

    hf_logging.disable_progress_bar()
    tok = load_zoo_tokenizer(root)
    model = AutoModelForCausalLM.from_pretrained(root / name, dtype=torch.float32).eval()
    batch = TrainCollator(tok.pad_token_id)([encode_text(tok, t, MAX_LENGTH) for t in texts])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float(torch.exp(-avg_nll(logits, batch["labels"])).mean())


def prepared_muse_models(cfg: MuseZooConfig) -> list[str]:
    return on_disk(muse_zoo_dir(cfg), MUSE_ZOO_MODELS)


def is_muse_prepared(cfg: MuseZooConfig, models: Iterable[str] = MUSE_ZOO_MODELS) -> bool:
    return is_complete(muse_zoo_dir(cfg), cfg.key(), MUSE_ZOO_MODELS, models)


def resolve_muse_models(models: Iterable[str] | str | None) -> tuple[str, ...]:
    """None or "all" -> both models; else the named ones (ConfigError on a bad name)."""
    return pick_models(models, MUSE_ZOO_MODELS, MUSE_ZOO_MODELS,
                       fix=f"muse-mini models are {', '.join(MUSE_ZOO_MODELS)} (comma-separated) or 'all'")


def prepare_muse(cfg: MuseZooConfig, models: Sequence[str] | str | None = None,
                 log: Callable[[str], None] = lambda m: print(m, flush=True), workers: int | None = None) -> dict:
    """Build (or reuse) the muse-mini models `models` of `cfg`; returns the manifest (`cached`: nothing trained)."""
    wanted = resolve_muse_models(models)
    return build_locked(muse_zoo_dir(cfg), cfg.key(), lambda: is_muse_prepared(cfg, wanted),
                        lambda: _prepare_locked(cfg, wanted, log, workers))


def _prepare_locked(cfg: MuseZooConfig, wanted: tuple[str, ...], log: Callable[[str], None],
                    workers: int | None) -> dict:
    root = muse_zoo_dir(cfg)
    t_start = time.perf_counter()
    manifest = read_manifest(root, cfg.key()) or {"key": cfg.key(), "config": asdict(cfg), "timings_s": {},
                                                  "memorisation": {}}
    timings, data_dir = manifest["timings_s"], root / "data"
    if not (root / "tokenizer" / "tokenizer.json").exists():
        from unlearning.models.tokenizer import train_bpe_tokenizer

        t = time.perf_counter()
        write_muse_mini(cfg.data, data_dir)
        tok = train_bpe_tokenizer(_texts(data_dir, ("forget", "retain1", "retain2", "holdout")),
                                  vocab_size=cfg.vocab_size)
        tok.save_pretrained(root / "tokenizer")
        timings["data+tokenizer"] = time.perf_counter() - t
        log(f"muse-mini and its tokenizer ({len(tok)} tokens) written in {timings['data+tokenizer']:.1f}s")
    todo = [m for m in wanted if not (root / m / "config.json").exists()]
    if todo:
        n, _ = worker_layout(todo, workers)
        log(f"training muse-mini {', '.join(todo)} ({cfg.size} tiny Llamas, {n} at a time, "
            f"{cfg.train.epochs} epochs)")
        train_in_workers(_train_one, root, json.dumps(asdict(cfg)), todo, workers, log, timings)
    texts = {s: _texts(data_dir, (s,)) for s in MEMORISATION_SPLITS}
    for m in wanted:
        if m not in manifest["memorisation"]:
            manifest["memorisation"][m] = {s: round(text_probability(root, m, ts), 4) for s, ts in texts.items()}
    timings["total"] = time.perf_counter() - t_start
    manifest.update(models=prepared_muse_models(cfg))
    write_manifest(root, manifest)
    return {**manifest, "cached": False}
