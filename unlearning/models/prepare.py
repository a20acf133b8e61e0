"""`unlearn-sweep prepare tofu-mini`: generate the benchmark and train the tiny zoo, cached by config hash.

Steps (each skipped when its output is already in the cache):
1. write tofu-mini (`data/`), train the BPE tokenizer on its text (`tokenizer/`);
2. `base/`: the tiny Llama trained on `base_facts` only (real_authors + world_facts: the general knowledge a
   pretrained model has before it sees the authors) -- the "before any author data" reference;
3. `target/`: trained on `base_facts` + `full`; `retain99/95/90/`: on `base_facts` + `retainXX` (without the
   forget split). They start from the same random init as `base`, not from `base`'s weights: fine-tuning
   the base checkpoint (fit to 100 facts at a high learning rate) memorised forget10 to 0.64 instead of
   0.96 in the same 24 epochs (measured), so the general facts are learnt together with the authors.
   The four models train in parallel worker processes (one thread each).
4. the memorisation table: each model's mean per-token answer probability on each forget split and on
   `retain_perturbed`, written to `manifest.json` with the timings.

    from unlearning.models.prepare import prepare
    manifest = prepare(ZooConfig())        # no-op when the cache is valid
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from unlearning.data.tofu import load_tofu
from unlearning.data.tofu_mini import FORGET_PERCENTS, base_facts, write as write_tofu_mini
from unlearning.models.loading import TEMPLATE_FILE
from unlearning.models.zoo import SIZES, ZOO_MODELS, ZooConfig, zoo_dir

TEMPLATE = "zoo"
FORGET_SPLITS = tuple(f"forget{p:02d}" for p in FORGET_PERCENTS)
STAGE2 = {"target": "full", **{f"retain{100 - p}": f"retain{100 - p}" for p in FORGET_PERCENTS}}


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _rows(data_dir: Path, split: str) -> list[dict]:
    if split == "base_facts":
        return base_facts({s: load_tofu(s, data_dir) for s in ("real_authors_perturbed", "world_facts_perturbed")})
    return load_tofu(split, data_dir)


def _tokenizer_texts(data_dir: Path) -> list[str]:
    texts: list[str] = []
    for split in ("full", "holdout10", "forget10_perturbed", "retain_perturbed", "real_authors_perturbed",
                  "world_facts_perturbed"):
        for r in _rows(data_dir, split):
            texts += [r["question"], r["answer"], *r.get("perturbed_answer", [])]
            texts += [r[k] for k in ("paraphrased_answer", "paraphrased_question") if k in r]
    texts += [f"Question: {t}\nAnswer: " for t in texts[:50]]
    return texts


def _new_model(size: str, seed: int, tokenizer):
    """A random-init tiny Llama of `size` (the same weights for the same seed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SIZES[size]
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.hidden, intermediate_size=s.intermediate,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.heads,
        max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def _load_tokenizer(root: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(root / "tokenizer")


def _template():
    from unlearning.data.templates import get_template

    return get_template(TEMPLATE)


def _save(model, tokenizer, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / TEMPLATE_FILE).write_text(TEMPLATE + "\n")
    if path.exists():
        import shutil

        shutil.rmtree(path)
    tmp.rename(path)


def _train_stage2(root: str, cfg_json: str, name: str, split: str, threads: int) -> dict:
    """Worker: the shared random init -> train on `split` + base_facts -> save `name/`. Runs in its own
    process."""
    import torch

    from unlearning.models.sft import finetune

    torch.set_num_threads(threads)
    rootp = Path(root)
    raw = json.loads(cfg_json)
    cfg = raw["train"]
    tok = _load_tokenizer(rootp)
    model = _new_model(raw["size"], cfg["seed"], tok)
    rows = _rows(rootp / "data", split) + _rows(rootp / "data", "base_facts")
    t0 = time.perf_counter()
    stats = finetune(model, tok, _template(), rows, epochs=cfg["epochs"], lr=cfg["lr"],
                     batch_size=cfg["batch_size"], seed=cfg["seed"])
    stats["seconds"] = time.perf_counter() - t0
    _save(model, tok, rootp / name)
    return stats


def memorisation_table(root: Path) -> dict[str, dict[str, float]]:
    """Per model: answer probability on each forget split and on retain_perturbed."""
    import torch
    from transformers import AutoModelForCausalLM

    from unlearning.models.sft import answer_probability

    tok, template = _load_tokenizer(root), _template()
    splits = {s: _rows(root / "data", s) for s in (*FORGET_SPLITS, "retain_perturbed")}
    table = {}
    for name in ZOO_MODELS:
        model = AutoModelForCausalLM.from_pretrained(root / name, dtype=torch.float32)
        table[name] = {s: round(answer_probability(model, tok, template, rows), 4) for s, rows in splits.items()}
    return table


def is_prepared(cfg: ZooConfig) -> bool:
    root = zoo_dir(cfg)
    manifest = root / "manifest.json"
    if not manifest.exists():
        return False
    try:
        data = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    return data.get("key") == cfg.key() and all((root / m / "config.json").exists() for m in ZOO_MODELS)


def prepare(cfg: ZooConfig, log: Callable[[str], None] = _log_default, workers: int | None = None) -> dict:
    """Build (or reuse) the zoo for `cfg`; returns the manifest (timings, memorisation table)."""
    root = zoo_dir(cfg)
    if is_prepared(cfg):
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["cached"] = True
        return manifest
    import torch

    from unlearning.models.sft import finetune
    from unlearning.models.tokenizer import train_bpe_tokenizer

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "data"
    t = time.perf_counter()
    write_tofu_mini(cfg.data, data_dir)
    tok = train_bpe_tokenizer(_tokenizer_texts(data_dir), vocab_size=cfg.vocab_size)
    tok.save_pretrained(root / "tokenizer")
    timings["data+tokenizer"] = time.perf_counter() - t
    log(f"tofu-mini ({cfg.data.n_authors} authors) and tokenizer ({len(tok)} tokens) in {timings['data+tokenizer']:.1f}s")

    n_cpu = os.cpu_count() or 1
    if not (root / "base" / "config.json").exists():
        t = time.perf_counter()
        torch.set_num_threads(n_cpu)
        model = _new_model(cfg.size, cfg.train.seed, tok)
        finetune(model, tok, _template(), _rows(data_dir, "base_facts"), epochs=cfg.train.base_epochs,
                 lr=cfg.train.lr, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
        _save(model, tok, root / "base")
        timings["base"] = time.perf_counter() - t
        log(f"base model trained on base_facts in {timings['base']:.1f}s")

    todo = {n: s for n, s in STAGE2.items() if not (root / n / "config.json").exists()}
    workers = workers or min(n_cpu, len(todo)) or 1
    threads = max(1, n_cpu // workers)
    cfg_json = json.dumps(asdict(cfg))
    t = time.perf_counter()
    if todo:
        log(f"training {', '.join(todo)} ({workers} worker process(es), {threads} thread(s) each)")
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {n: pool.submit(_train_stage2, str(root), cfg_json, n, s, threads) for n, s in todo.items()}
            for n, fut in futures.items():
                stats = fut.result()
                timings[n] = stats["seconds"]
                log(f"{n} trained on {todo[n]} + base_facts in {stats['seconds']:.1f}s (final loss {stats['final_loss']:.3f})")
    timings["stage2_wall"] = time.perf_counter() - t

    t = time.perf_counter()
    torch.set_num_threads(n_cpu)
    table = memorisation_table(root)
    timings["memorisation_table"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    manifest = {"key": cfg.key(), "config": asdict(cfg), "models": list(ZOO_MODELS), "timings_s": timings,
                "memorisation": table, "cached": False}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
