"""`unlearn-sweep prepare tofu-mini`: generate the benchmark and train the tiny zoo models a run needs, cached.

Steps (each skipped when its output is already in the cache; only the models asked for are trained):
1. write tofu-mini (`data/`), train the BPE tokenizer on its text (`tokenizer/`);
2. `target/`: trained on the general facts + `full`; `retainXX/`: on the general facts + `retainXX` (without
   the forget split). The general facts (real_authors + world_facts, the knowledge a pretrained model brings)
   are repeated `base_repeats` times per epoch so they are as robust as pretrained knowledge: unlearning an
   author must not wipe the world facts the model utility measures. Models start from the same random init;
   two train at a time in worker processes (one thread each), printing their progress with an ETA;
3. `base/` (on request only): the same init trained on the general facts alone, "before any author data";
4. the memorisation table: each prepared model's mean per-token answer probability on each forget split
   and on `retain_perturbed`, kept in `manifest.json` with the timings.

By default only `target` and `retain90` are trained (what the default forget10 sweep needs); the others are
trained on demand (`prepare tofu-mini --models all`, or automatically when a sweep or train config names
them). A file lock makes concurrent prepares of one zoo wait for each other instead of racing; Ctrl-C or
SIGTERM stops the worker processes at once (a model is saved only when its training finished).

    from unlearning.models.prepare import prepare
    manifest = prepare(ZooConfig())                               # target + retain90; a no-op when cached
    manifest = prepare(ZooConfig(), models=("retain95", "retain99"))
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

from unlearning.data.tofu import load_tofu
from unlearning.data.tofu_mini import FORGET_PERCENTS, base_facts, write as write_tofu_mini
from unlearning.models.muse_zoo import MuseZooConfig
from unlearning.models.pinned_zoo import install, pinned_for
from unlearning.models.zoo import DEFAULT_MODELS, ZOO_MODELS, ZooConfig, zoo_dir
from unlearning.models.zoo_model import load_zoo_tokenizer as _load_tokenizer
from unlearning.models.zoo_model import new_model as _new_model
from unlearning.models.zoo_model import save_model
from unlearning.models.zoo_build import (build_locked, is_complete, on_disk, pick_models, read_manifest,
                                         train_in_workers, worker_layout, write_manifest)

TEMPLATE = "zoo"
FORGET_SPLITS = tuple(f"forget{p:02d}" for p in FORGET_PERCENTS)
# what each model is trained on besides the general facts (None: the general facts alone)
TRAIN_SPLIT = {"base": None, "target": "full", **{f"retain{100 - p}": f"retain{100 - p}" for p in FORGET_PERCENTS}}


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


def training_rows(data_dir: Path, name: str, base_repeats: int) -> list[dict]:
    """The SFT rows of zoo model `name`: its split (if any) + the general facts repeated `base_repeats` times."""
    split = TRAIN_SPLIT[name]
    general = _rows(data_dir, "base_facts")
    own = _rows(data_dir, split) if split else []
    return own + general * (base_repeats if split else 1)


def _template():
    from unlearning.data.templates import get_template

    return get_template(TEMPLATE)


def _save(model, tokenizer, path: Path) -> None:
    save_model(model, tokenizer, path, TEMPLATE)


def _train_one(root: str, cfg_json: str, name: str, threads: int) -> dict:
    """Worker: the shared random init -> SFT on the model's rows -> save `name/`; prints progress with an ETA.
    Runs in its own process."""
    import torch

    from unlearning.models.sft import finetune

    torch.set_num_threads(threads)
    rootp = Path(root)
    raw = json.loads(cfg_json)
    cfg = raw["train"]
    tok = _load_tokenizer(rootp)
    model = _new_model(raw["size"], cfg["seed"], tok)
    rows = training_rows(rootp / "data", name, cfg["base_repeats"])
    epochs = cfg["base_epochs"] if name == "base" else cfg["epochs"]
    t0 = time.perf_counter()
    every = max(1, epochs // 4)

    def progress(epoch: int, loss: float) -> None:
        if epoch % every == 0 and epoch < epochs:
            spent = time.perf_counter() - t0
            print(f"  {name}: epoch {epoch}/{epochs}, loss {loss:.3f}, about {spent * (epochs - epoch) / epoch:.0f}s "
                  "left", flush=True)

    stats = finetune(model, tok, _template(), rows, epochs=epochs, lr=cfg["lr"], batch_size=cfg["batch_size"],
                     seed=cfg["seed"], on_epoch=progress)
    stats["seconds"] = time.perf_counter() - t0
    _save(model, tok, rootp / name)
    return stats


def memorisation_row(root: Path, name: str, splits: dict[str, list[dict]] | None = None) -> dict[str, float]:
    """One model's answer probability on each forget split and on retain_perturbed."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from unlearning.models.sft import answer_probability

    hf_logging.disable_progress_bar()
    splits = splits or {s: _rows(root / "data", s) for s in (*FORGET_SPLITS, "retain_perturbed")}
    tok, template = _load_tokenizer(root), _template()
    model = AutoModelForCausalLM.from_pretrained(root / name, dtype=torch.float32)
    return {s: round(answer_probability(model, tok, template, rows), 4) for s, rows in splits.items()}


def prepared_models(cfg: ZooConfig) -> list[str]:
    """The zoo models of `cfg` whose weights are in the cache."""
    return on_disk(zoo_dir(cfg), ZOO_MODELS)


def is_prepared(cfg: ZooConfig, models: Iterable[str] = DEFAULT_MODELS) -> bool:
    return is_complete(zoo_dir(cfg), cfg.key(), ZOO_MODELS, models)


def resolve_models(models: Iterable[str] | str | None) -> tuple[str, ...]:
    """`None` -> the default pair; "all" -> every zoo model; else the named ones (ConfigError on a bad name)."""
    return pick_models(models, DEFAULT_MODELS, ZOO_MODELS,
                       fix=f"name zoo models from {', '.join(ZOO_MODELS)} (comma-separated) or 'all'")


def prepare(cfg: ZooConfig, models: Sequence[str] | str | None = None, log: Callable[[str], None] = _log_default,
            workers: int | None = None, pinned: bool = True) -> dict:
    """Build (or reuse) the zoo models `models` of `cfg` (default: target + retain90); returns the manifest
    (timings, memorisation table of every prepared model, `pinned`: the models copied from a pinned copy,
    `cached`: nothing had to be done). `pinned=False` trains every model here, even a pinned one."""
    wanted = resolve_models(models)
    return build_locked(zoo_dir(cfg), cfg.key(), lambda: is_prepared(cfg, wanted),
                        lambda: _prepare_locked(cfg, wanted, log, workers, pinned))


def _prepare_locked(cfg: ZooConfig, wanted: tuple[str, ...], log: Callable[[str], None],
                    workers: int | None, pinned: bool = True) -> dict:
    root = zoo_dir(cfg)
    t_start = time.perf_counter()
    manifest = read_manifest(root, cfg.key()) or {"key": cfg.key(), "config": asdict(cfg), "timings_s": {},
                                                  "memorisation": {}}
    timings = manifest["timings_s"]
    data_dir = root / "data"
    t = time.perf_counter()
    if not (data_dir / "full.jsonl").exists():
        write_tofu_mini(cfg.data, data_dir)
    todo = [m for m in wanted if not (root / m / "config.json").exists()]
    if todo and pinned:  # a pinned pair (`unlearning.models.pinned_zoo`): same models on every machine sharing it
        release = pinned_for(cfg.key(), data_dir, log=log)
        if release is not None:
            copied = install(release, root, todo, log)
            manifest.setdefault("pinned", []).extend(m for m in copied if m not in manifest.get("pinned", []))
            manifest["memorisation"].update({m: release.record["memorisation"][m] for m in copied})
    if not (root / "tokenizer" / "tokenizer.json").exists():
        from unlearning.models.tokenizer import train_bpe_tokenizer

        tok = train_bpe_tokenizer(_tokenizer_texts(data_dir), vocab_size=cfg.vocab_size)
        tok.save_pretrained(root / "tokenizer")
        timings["data+tokenizer"] = time.perf_counter() - t
        log(f"tofu-mini ({cfg.data.n_authors} authors) and its tokenizer ({len(tok)} tokens) written in "
            f"{timings['data+tokenizer']:.1f}s")

    todo = [m for m in wanted if not (root / m / "config.json").exists()]
    if todo:
        manifest["pinned"] = [m for m in manifest.get("pinned", []) if m not in todo]
        n, threads = worker_layout(todo, workers)
        log(f"training {', '.join(todo)} on {cfg.size} tiny Llamas ({n} at a time, {threads} thread(s) each; "
            f"{cfg.train.epochs} epochs)")
        train_in_workers(_train_one, root, json.dumps(asdict(cfg)), todo, workers, log, timings)

    t = time.perf_counter()
    splits = {s: _rows(data_dir, s) for s in (*FORGET_SPLITS, "retain_perturbed")}
    for m in wanted:
        if m not in manifest["memorisation"]:
            manifest["memorisation"][m] = memorisation_row(root, m, splits)
    manifest["memorisation"] = {m: manifest["memorisation"][m] for m in ZOO_MODELS if m in manifest["memorisation"]}
    timings["memorisation_table"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    manifest.update(models=prepared_models(cfg))
    write_manifest(root, manifest)
    return {**manifest, "cached": False}


def ensure_zoo_models(names: Iterable[str | None], log: Callable[[str], None] = _log_default) -> list[str]:
    """Train the zoo models among `names` (e.g. a spec's models and retain models) that are not prepared yet;
    other names (hub ids, folders, None) are ignored. Returns the zoo names that had to be trained."""
    from unlearning.models.zoo import parse_zoo_name

    groups: dict[ZooConfig, list[str]] = {}
    for name in names:
        parsed = parse_zoo_name(str(name)) if name else None
        if parsed is not None:
            groups.setdefault(parsed[0], []).append(parsed[1])
    trained: list[str] = []
    for cfg, models in groups.items():
        if isinstance(cfg, MuseZooConfig):  # muse-mini's zoo (`unlearning.models.muse_prepare`)
            trained += _ensure_muse_models(cfg, models, log)
            continue
        missing = [m for m in dict.fromkeys(models) if not is_prepared(cfg, (m,))]
        if missing:
            head = "tofu-mini" if cfg.size == "small" else f"tofu-mini-{cfg.size}"
            log(f"zoo model(s) {', '.join(f'{head}/{m}' for m in missing)} not prepared yet: training them now "
                "(cached for later runs)")
            prepare(cfg, models=missing, log=log)
            trained += [f"{head}/{m}" for m in missing]
    return trained


def _ensure_muse_models(cfg: MuseZooConfig, models: list[str], log: Callable[[str], None]) -> list[str]:
    from unlearning.models.muse_prepare import is_muse_prepared, prepare_muse

    missing = [m for m in dict.fromkeys(models) if not is_muse_prepared(cfg, (m,))]
    if not missing:
        return []
    log(f"zoo model(s) {', '.join(f'{cfg.head}/{m}' for m in missing)} not prepared yet: training them now "
        "(cached for later runs)")
    prepare_muse(cfg, models=missing, log=log)
    return [f"{cfg.head}/{m}" for m in missing]
