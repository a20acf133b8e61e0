"""The training log LMCleaner reads (unlearning/methods/lmcleaner.py): which training examples each optimizer step saw,
its learning rate and its parameter update; written while a model is trained, read when it is unlearned.

    rec = LogRecorder(rows, pad_token_id)                  # rows: the tokenised training examples, dataset order
    rec.step(lr, indices, params_before, params_after)     # after every optimizer step (keep_updates: store u_t)
    rec.write("runs/sft/training_log")
    log = open_stored_log("runs/sft/training_log")         # log.steps[t].lr / .indices, log.update(t), log.batch(t)

A log folder holds (format ``unlearn-sweep-training-log/1``):
* ``meta.json``: {"format", "steps": N, "pad_token_id", "updates": "stored" | "replay", "source": {...}};
* ``steps.jsonl``: one line per optimizer step t = 0..N-1: {"step": t, "lr": the learning rate step t used,
  "indices": the positions in ``rows.jsonl`` of the examples of its batch};
* ``rows.jsonl``: the training examples as tokenised (input_ids, labels, attention_mask), in dataset order: batch t
  is rebuilt as the right-padded collation of its rows (HVPs need the batch, as the reference's BatchReconstructor);
* ``updates/step-XXXXXXX.pt``: u_t = theta_{t+1} - theta_t (its own update; a flat float32 vector over the trainable
  parameters in ``named_parameters`` order), for the steps recorded with ``keep_updates`` (at least every step whose
  batch holds an example to forget). ``"updates": "replay"`` logs (the tofu-mini zoo's, ``unlearning.models.
  training_log``) store none: their updates are recomputed by replaying the recorded run.

What open-unlearning's TrainingLogger records (PR #170 @ c104723, ``src/trainer/training_logger.py`` and
``src/trainer/base.py``): per step, ``sample_indices`` (the batch's dataset ``index``), ``eta`` (the optimizer's lr) and
``u``, ``current_step``; its u at step j is taken inside ``training_step`` j, before that step's optimizer update, so
it is step j-1's update (see docs/methods-fidelity.md, LMCleaner, and the method's ``log_alignment``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from unlearning.errors import ConfigError

LOG_FORMAT = "unlearn-sweep-training-log/1"


@dataclass(frozen=True)
class LogStep:
    step: int
    lr: float
    indices: tuple[int, ...]


def flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.detach().reshape(-1).float().cpu() for t in tensors])


class TrainingLog:
    """A recorded training run: ``steps``, ``rows``, ``pad_token_id``, ``update(t)`` (u_t, flat float32)."""

    def __init__(self, steps: list[LogStep], rows: list[dict[str, list[int]]], pad_token_id: int,
                 source: dict[str, Any] | None = None) -> None:
        self.steps, self.rows, self.pad_token_id, self.source = steps, rows, int(pad_token_id), source or {}
        self.final: Tensor | None = None   # the logged run's final weights, when they are not the model's (zoo re-run)

    def update(self, t: int) -> Tensor:
        raise NotImplementedError

    def batch(self, t: int) -> dict[str, Tensor]:
        """Step t's training batch, right-padded (input_ids, attention_mask, labels)."""
        from unlearning.data.collators import TrainCollator

        batch = TrainCollator(self.pad_token_id)([self.rows[i] for i in self.steps[t].indices])
        return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}


class StoredTrainingLog(TrainingLog):
    """A log folder whose updates are stored (``updates/step-XXXXXXX.pt``)."""

    def __init__(self, folder: Path, steps, rows, pad_token_id, source=None) -> None:
        super().__init__(steps, rows, pad_token_id, source)
        self.folder = folder

    def update(self, t: int) -> Tensor:
        path = self.folder / "updates" / f"step-{t:07d}.pt"
        if not path.is_file():
            raise ConfigError("LMCleaner", field="training_log", value=str(self.folder),
                              fix=f"the log has no update for step {t} (a step with a forget example): record it "
                                  "with keep_updates for every step")
        return torch.load(path, map_location="cpu", weights_only=True)


def read_log_files(folder: str | Path) -> tuple[dict[str, Any], list[LogStep], list[dict[str, list[int]]]]:
    """(meta, steps, rows) of a log folder; ConfigError (one line) when it is not one."""
    root = Path(folder).expanduser()
    missing = [n for n in ("meta.json", "steps.jsonl", "rows.jsonl") if not (root / n).is_file()]
    if missing:
        raise ConfigError("LMCleaner", field="training_log", value=str(folder),
                          fix=f"no training log there ({missing[0]} missing): point training_log at the folder a "
                              "LogRecorder wrote during training, or use 'zoo' for a tofu-mini zoo model")
    meta = json.loads((root / "meta.json").read_text())
    if meta.get("format") != LOG_FORMAT:
        raise ConfigError("LMCleaner", field="training_log", value=str(folder),
                          fix=f"meta.json format is {meta.get('format')!r}; expected {LOG_FORMAT!r}")
    steps = [LogStep(int(d["step"]), float(d["lr"]), tuple(int(i) for i in d["indices"]))
             for d in map(json.loads, (root / "steps.jsonl").read_text().splitlines()) if d]
    if [s.step for s in steps] != list(range(len(steps))):
        raise ConfigError("LMCleaner", field="training_log", value=str(folder),
                          fix="steps.jsonl must list steps 0, 1, 2, ... in order")
    rows = [json.loads(line) for line in (root / "rows.jsonl").read_text().splitlines() if line.strip()]
    return meta, steps, rows


def open_stored_log(folder: str | Path) -> StoredTrainingLog:
    meta, steps, rows = read_log_files(folder)
    if meta.get("updates") != "stored":
        raise ConfigError("LMCleaner", field="training_log", value=str(folder),
                          fix="this log's updates are replayed (a zoo log): use training_log: zoo, or run through "
                              "unlearn-sweep train")
    return StoredTrainingLog(Path(folder).expanduser(), steps, rows, meta["pad_token_id"], meta.get("source"))


class LogRecorder:
    """Collects a log while a model trains (``step`` after each optimizer step) and writes the folder."""

    def __init__(self, rows: Sequence[dict[str, Any]], pad_token_id: int, keep_updates: bool = True,
                 source: dict[str, Any] | None = None) -> None:
        self.rows = [{k: list(map(int, r[k])) for k in ("input_ids", "labels", "attention_mask") if k in r}
                     for r in rows]
        self.pad_token_id, self.keep_updates, self.source = int(pad_token_id), keep_updates, source or {}
        self.steps: list[LogStep] = []
        self.updates: dict[int, Tensor] = {}

    def step(self, lr: float, indices: Sequence[int], before: Tensor | None = None,
             after: Tensor | None = None) -> None:
        """Record the next optimizer step: its lr, its batch's row positions and (flat) parameters around it."""
        t = len(self.steps)
        self.steps.append(LogStep(t, float(lr), tuple(int(i) for i in indices)))
        if self.keep_updates and before is not None and after is not None:
            self.updates[t] = (after - before).float().cpu()

    def write(self, folder: str | Path) -> Path:
        root = Path(folder).expanduser()
        (root / "updates").mkdir(parents=True, exist_ok=True)
        (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        (root / "steps.jsonl").write_text("".join(json.dumps({"step": s.step, "lr": s.lr, "indices": list(s.indices)})
                                                  + "\n" for s in self.steps))
        for t, u in self.updates.items():
            torch.save(u, root / "updates" / f"step-{t:07d}.pt")
        meta = {"format": LOG_FORMAT, "steps": len(self.steps), "pad_token_id": self.pad_token_id,
                "updates": "stored" if self.keep_updates else "replay", "source": self.source}
        (root / "meta.json").write_text(json.dumps(meta, indent=1))
        return root
