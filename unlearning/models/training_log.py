"""The tofu-mini zoo's training log for LMCleaner (``training_log: zoo``), made on demand and cached apart from the zoo.

    log = zoo_training_log("tofu-mini/target")   # first call: replays the zoo's SFT run once (minutes) and checks it
    log.steps[t].lr, log.steps[t].indices, log.update(t), log.batch(t)
    open_training_log("zoo", "tofu-mini/target")     # what run_train calls for LMCleaner; a folder opens a stored log

Why a replay: the zoo's models are trained by ``unlearning.models.sft.finetune`` (AdamW, one-cycle lr, a seeded
shuffle), which records nothing; logging every step's update of the small zoo model would take ~10 GB (1880 steps x
5 MB). So ``prepare`` stays as it is (the zoo's cache key and cached models are untouched) and this module re-runs
the same recipe (the zoo's random init, ``training_rows``, the same generator, AdamW and OneCycleLR, one thread as
the zoo build) once, records which rows each step saw and its learning rate (``steps.jsonl``, ``rows.jsonl``: the
lmcleaner_log format, ``"updates": "replay"``), and measures how far the replayed weights end from the cached zoo
model's (``source.replay_max_abs_diff`` in meta.json). Measured since ``REPLAY_VERSION`` 2 (the replay steps the
same ``sft.SftRun`` as the zoo build, one permutation per epoch): 0.0, the re-run ends on the cached weights bit
for bit (the first replay drew a permutation per batch and ended 0.74 away). Its final weights (``final.pt``) are
the model LMCleaner starts from (``TrainingLog.final``: the method loads them, the log describes exactly that model).
LMCleaner then asks for u_tz in ascending tz; :class:`ZooReplayLog` replays forward to produce each (restarting
only if asked for an earlier step). Cached under ``<cache>/training-logs/<zoo folder>-<model>/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from unlearning.errors import ConfigError
from unlearning.methods.lmcleaner_log import LogRecorder, TrainingLog, flat, open_stored_log, read_log_files
from unlearning.models.zoo import parse_zoo_name, zoo_dir

THREADS = 1               # the zoo's build trains its models one thread each (zoo_build.worker_layout on 2 cores)
FINAL_FILE = "final.pt"   # the re-run's final weights (flat float32): the model the log describes
# 2: the replay is sft.SftRun itself (version 1 drew a new permutation for every batch, so it replayed another run
# than the zoo's: 0.74 max |w| apart on tofu-mini/target); a log of another version is recorded again
REPLAY_VERSION = 2


def _recipe(name: str) -> tuple[Any, str, Path]:
    parsed = parse_zoo_name(name)
    if parsed is None or type(parsed[0]).__name__ != "ZooConfig":
        raise ConfigError("LMCleaner", field="training_log", value="zoo",
                          fix=f"'zoo' needs a tofu-mini zoo model (tofu-mini/target, ...), not {name!r}: give the "
                              "folder of your own run's training log")
    cfg, model_name = parsed
    root = zoo_dir(cfg)
    if not (root / model_name).is_dir():
        raise ConfigError("LMCleaner", field="model.name", value=name,
                          fix=f"the zoo model is not prepared: run `unlearn-sweep prepare tofu-mini --size {cfg.size}`")
    return cfg, model_name, root


class _Replay:
    """The zoo's SFT run of one model, step by step: `sft.SftRun`, the code that trained it, from the same init."""

    def __init__(self, name: str, threads: int) -> None:
        from dataclasses import asdict

        from unlearning.models.prepare import _template, training_rows
        from unlearning.models.sft import SftRun, encode_rows
        from unlearning.models.zoo_model import load_zoo_tokenizer, new_model

        cfg, model_name, root = _recipe(name)
        train = asdict(cfg.train)
        self.threads, self.root, self.model_name = threads, root, model_name
        torch.set_num_threads(threads)
        tok = load_zoo_tokenizer(root)
        self.pad_token_id = tok.pad_token_id
        self.model = new_model(cfg.size, train["seed"], tok)
        self.items = encode_rows(tok, _template(), training_rows(root / "data", model_name, train["base_repeats"]))
        self.run = SftRun(self.model, self.items, tok.pad_token_id, lr=train["lr"], batch_size=train["batch_size"],
                          epochs=train["base_epochs"] if model_name == "base" else train["epochs"], seed=train["seed"])
        self.total = self.run.total
        self.source = {"zoo": name, "zoo_dir": str(root), "threads": threads, "replay": REPLAY_VERSION}

    @property
    def t(self) -> int:
        return self.run.t

    def step(self) -> tuple[float, list[int], torch.Tensor]:
        """Run the next optimizer step; (its lr, its rows, its update u_t flat)."""
        before = flat(self.model.parameters())
        lr, indices, _loss, _tokens = self.run.step()
        return lr, indices, flat(self.model.parameters()) - before


def log_dir(name: str) -> Path:
    _cfg, model_name, root = _recipe(name)
    return root.parent.parent / "training-logs" / f"{root.name}-{model_name}"


def zoo_training_log(name: str, log=print) -> "ZooReplayLog":
    """The zoo model's log (recorded on the first call, checked against the cached weights)."""
    folder = log_dir(name)
    if not _current(folder):
        _record_once(name, folder, log)
    meta, steps, rows = read_log_files(folder)
    out = ZooReplayLog(name, steps, rows, meta["pad_token_id"], meta["source"])
    out.final = torch.load(folder / FINAL_FILE, map_location="cpu", weights_only=True)
    return out


def _current(folder: Path) -> bool:
    """Whether `folder` holds a complete log of this replay's version."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("source", {}).get("replay") == REPLAY_VERSION


def _record_once(name: str, folder: Path, log) -> None:
    """Record under a file lock into a scratch folder renamed into place when complete: concurrent trials of one
    sweep (two LMCleaner trials starting together) wait for one recording instead of writing the same files."""
    import shutil

    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{folder.name}.lock")):
        if _current(folder):
            return  # another process recorded it while this one waited
        scratch = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(scratch, ignore_errors=True)   # a recording killed half-way
        _record(name, scratch, log)
        shutil.rmtree(folder, ignore_errors=True)    # an incomplete folder of an older version
        os.replace(scratch, folder)


def _record(name: str, folder: Path, log) -> None:
    """Replay the zoo model's SFT once (the zoo's layout: one thread per model), log it, and record how far the replayed
    weights are from the cached ones (``meta.json`` source.replay_max_abs_diff; 0.0 = the cached model's own run)."""
    from transformers import AutoModelForCausalLM

    _cfg, model_name, root = _recipe(name)
    cached = AutoModelForCausalLM.from_pretrained(root / model_name, dtype=torch.float32)
    want = flat(cached.parameters())
    threads_before = torch.get_num_threads()
    try:
        log(f"recording the training log of {name}: replaying its SFT run ({THREADS} thread(s); a few minutes, once)")
        replay = _Replay(name, THREADS)
        rec = LogRecorder(replay.items, replay.pad_token_id, keep_updates=False, source=replay.source)
        while replay.t < replay.total:
            lr, indices, _u = replay.step()
            rec.step(lr, indices)
        got = flat(replay.model.parameters())
    finally:
        torch.set_num_threads(threads_before)
    diff = float((got - want).abs().max())
    rec.source = {**rec.source, "replay_max_abs_diff": diff, "cached_max_abs_weight": float(want.abs().max())}
    rec.write(folder)
    torch.save(got, folder / FINAL_FILE)
    log(f"training log of {name}: {len(rec.steps)} steps; " + (
        "the re-run ends on the cached weights exactly" if diff == 0.0 else
        f"the re-run ends {diff:.1e} from the cached weights (another thread count?), so LMCleaner starts from the "
        "re-run's own weights (final.pt)"))


class ZooReplayLog(TrainingLog):
    """A zoo log whose updates are produced by replaying the recorded run forward."""

    def __init__(self, name: str, steps, rows, pad_token_id, source) -> None:
        super().__init__(steps, rows, pad_token_id, source)
        self.name, self._replay = name, None

    def update(self, t: int) -> torch.Tensor:
        before = torch.get_num_threads()
        try:   # the replay runs at the thread count that reproduced the zoo model (float sums depend on it)
            if self._replay is None or self._replay.t > t:
                self._replay = _Replay(self.name, int(self.source.get("threads", 1)))
            torch.set_num_threads(self._replay.threads)
            while True:
                step = self._replay.t
                _lr, indices, u = self._replay.step()
                if step == t:
                    break
        finally:
            torch.set_num_threads(before)
        if tuple(indices) != self.steps[t].indices:
            raise ConfigError("LMCleaner", field="training_log", value="zoo",
                              fix=f"the replay's step {t} saw other rows than the log: delete {log_dir(self.name)}")
        return u


def open_training_log(spec: str, model_name: str) -> TrainingLog:
    """``zoo`` -> the zoo model's replayed log; a folder -> its stored log."""
    return zoo_training_log(model_name) if spec == "zoo" else open_stored_log(spec)


def describe(folder: str | Path) -> dict[str, Any]:
    """meta.json of a log folder (for reports)."""
    return json.loads((Path(folder) / "meta.json").read_text())
