"""THE unlearning loop: `unlearn(model, method, data, cfg)` trains one method on one ForgetRetain dataset.

    from unlearning.train.loop import unlearn
    history = unlearn(model, method, data, cfg, ref_model=None, eval_hook=None,
                      checkpoint_dir="runs/x/checkpoints", resume=True)
    history.losses()          # one mean loss per optimizer step (averaged over micro-batches and ranks)

What one call does (open-unlearning's HF-Trainer recipe; docs/methods.md, "Notation and the reference
training recipe"):
* joins the process group (one local process on 127.0.0.1 unless launched with torchrun), seeds torch
  with ``cfg.seed`` and the data's retain generator with (seed, rank);
* an epoch = this rank's share of the forget set (DistributedSampler order, see data.py) in micro-batches
  of ``batch_size``; ``grad_accum`` micro-batches make one optimizer step (the epoch's last
  group may be shorter); each micro-batch loss is divided by its group's size, gradients are averaged
  over ranks;
* warmup ``warmup_epochs`` converted to steps as OU: floor(warmup_epochs*|forget|/(B*grad_accum*world));
  then linear decay to 0 (or constant); AdamW with weight decay; global-norm clipping;
* ``eval_hook(module, epoch)`` runs at the start (epoch 0) and at every evaluation point: every
  ``eval_every`` epochs (fractions allowed: 0.5 = twice per epoch) and at the end, each after the optimizer
  step `schedule.step_at(epoch)`; on every rank, in eval mode without gradients; what it returns (a dict;
  None = nothing for this point) is stored in ``history.evals`` with its ``epoch`` label and ``step``;
* ``stop_after_epoch`` (fractions allowed) stops at that point while keeping the whole run's schedule;
* a non-finite loss on any rank raises :class:`TrainingDiverged` (on every rank) before the update;
* with ``checkpoint_dir``: a checkpoint at every epoch end (and every ``save_every_steps`` steps) holding
  the engine state (model, optimizer, scheduler) and, per rank, the loop position, the RNG states
  (torch, the data's retain generator, BalDRO-G's generator) and the history; ``resume=True`` continues
  from the newest one and reproduces the uninterrupted trajectory exactly.

Methods that name their trainable parameters (RMU's ``trainable_params_regex``) get every other parameter
frozen. Optional method hooks (looked up on the method, or on a BalDRO wrapper's base): ``begin_micro_batch(k,
n)`` before micro-batch k of an n-micro-batch optimizer step (GRU projects the accumulated gradient);
``end_epoch(module, epochs_done, batches, ref_model)`` after every full epoch, in eval mode without gradients,
``batches`` a lazy iterator over that epoch's micro-batches (PDU's dual warm-up and per-epoch dual update);
``state_dict``/``load_state_dict`` checkpointed with the loop position (PDU's dual variable); ``micro_batches(data,
epoch, rank, world, batch_size)`` -> an epoch's micro-batches (lists of forget indices) in place of the data's own
order, or None for that order (SIBL's T outer iterations, each a fresh batch; LUNAR's one-step reference fit). The module is returned to the caller trained, in eval mode and fully materialised (ZeRO-3 too).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from unlearning.errors import ConfigError
from unlearning.methods.base import UnlearningMethod
from unlearning.train.config import LoopConfig
from unlearning.train.data import ForgetRetainDataset, micro_batches_per_epoch
from unlearning.train.engine import (DistInfo, Engine, all_reduce_mean, barrier, build_engine, init_distributed,
                                     warmup_steps_for)
from unlearning.train.schedule import epoch_label, eval_points, step_at

EvalHook = Callable[[nn.Module, int], "Mapping[str, Any] | None"]
LATEST = "latest.json"
# settings that may change between a run and its resume without changing the trajectory
RESUME_FREE_KEYS = ("save_every_steps", "keep_checkpoints", "stop_after_epoch")


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf: training stops before applying that update."""

    def __init__(self, epoch: int, step: int, values: Mapping[str, float]) -> None:
        self.epoch, self.step, self.values = epoch, step, dict(values)
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        super().__init__(f"training diverged at optimizer step {step} (epoch {epoch}): {shown}. "
                         "Fix: lower lr, raise beta/warmup, or check the data for empty answers")


@dataclass
class TrainHistory:
    """Per-step losses and learning rates, per-epoch evaluations, and the schedule that produced them.

    ``steps[i]``: step (1-based), epoch (0-based), lr used, loss / forget_loss / retain_loss (means over
    the step's micro-batches and the ranks), time_s (seconds since this call of ``unlearn`` started)."""

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    total_steps: int = 0
    warmup_steps: int = 0
    steps_per_epoch: int = 0
    world_size: int = 1
    resumed_from_step: int | None = None
    wall_s: float = 0.0

    def losses(self, key: str = "loss") -> list[float]:
        return [s[key] for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Position:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


# --------------------------------------------------------------------------------------------------
# helpers


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def trainable_named_params(model: nn.Module, method: UnlearningMethod) -> list[tuple[str, nn.Parameter]]:
    """(name, param) pairs to optimise; a method with ``trainable_parameters`` (RMU) freezes the rest."""
    base = getattr(method, "base", method)
    chooser = getattr(base, "trainable_parameters", None)
    if chooser is not None:
        chosen = {n for n, _ in chooser(model)}
        if not chosen:
            raise ConfigError(base.name, field="trainable_params_regex",
                              value=getattr(base.config, "trainable_params_regex", None),
                              fix="the regex matches no parameter name of the model")
        for n, p in model.named_parameters():
            p.requires_grad_(n in chosen)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("model", field="parameters", value=0, fix="the model has no trainable parameters")
    return named


def _generator_of(method: UnlearningMethod) -> torch.Generator | None:
    gen = getattr(method, "generator", None)
    return gen if isinstance(gen, torch.Generator) else None


def _hook(method: UnlearningMethod, name: str) -> Callable[..., Any] | None:
    """A method's optional loop hook (see the module doc), looked up on a BalDRO wrapper's base too."""
    return getattr(method, name, None) or getattr(getattr(method, "base", None), name, None)


def _rng_state(method: UnlearningMethod, data: ForgetRetainDataset) -> dict[str, Any]:
    gen = _generator_of(method)
    method_state = _hook(method, "state_dict")
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "data": data.state_dict(),
            "method_generator": gen.get_state() if gen is not None else None,
            "method_state": method_state() if method_state is not None else None}


def _set_rng_state(state: Mapping[str, Any], method: UnlearningMethod, data: ForgetRetainDataset) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data.load_state_dict(state["data"])
    gen = _generator_of(method)
    if gen is not None and state.get("method_generator") is not None:
        gen.set_state(state["method_generator"])
    load = _hook(method, "load_state_dict")
    if load is not None and state.get("method_state") is not None:
        load(state["method_state"])


def _fingerprint(cfg: LoopConfig, n_forget: int, world: int) -> dict[str, Any]:
    dump = {k: v for k, v in cfg.model_dump().items() if k not in RESUME_FREE_KEYS}
    return {"train": dump, "n_forget": n_forget, "world_size": world}


# --------------------------------------------------------------------------------------------------
# checkpoints


def _save(root: Path, engine: Engine, pos: _Position, history: TrainHistory, method: UnlearningMethod,
          data: ForgetRetainDataset, fingerprint: dict[str, Any], keep: int, dist_info: DistInfo) -> None:
    tag = f"step-{pos.global_step:07d}"
    engine.save(root, tag)
    (root / tag).mkdir(parents=True, exist_ok=True)
    torch.save({"position": asdict(pos), "rng": _rng_state(method, data), "history": history.to_dict()},
               root / tag / f"loop-rank{dist_info.rank}.pt")
    barrier(dist_info)
    if dist_info.rank == 0:
        tmp = root / (LATEST + ".tmp")
        tmp.write_text(json.dumps({"tag": tag, **asdict(pos), "fingerprint": fingerprint}, indent=1))
        os.replace(tmp, root / LATEST)
        tags = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))
        for old in tags[:-keep]:
            shutil.rmtree(root / old, ignore_errors=True)
    barrier(dist_info)


def _check_fingerprint(saved: Mapping[str, Any], now: Mapping[str, Any], root: Path) -> None:
    if saved.get("world_size") != now["world_size"] or saved.get("n_forget") != now["n_forget"]:
        key = "world_size" if saved.get("world_size") != now["world_size"] else "n_forget"
        raise ConfigError(str(root / LATEST), field=key, value=now[key],
                          fix=f"the checkpoint was made with {key}={saved.get(key)}; use the same, "
                              "or a new checkpoint dir")
    for key, value in now["train"].items():
        if saved.get("train", {}).get(key) != value:
            raise ConfigError(str(root / LATEST), field=f"train.{key}", value=value,
                              fix=f"the checkpoint was made with {key}={saved['train'].get(key)!r}; resume with "
                                  "the same settings, or use a new checkpoint dir / resume=False")


def _load(root: Path, engine: Engine, method: UnlearningMethod, data: ForgetRetainDataset, fingerprint: dict[str, Any],
          dist_info: DistInfo) -> tuple[_Position, TrainHistory] | None:
    marker = root / LATEST
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text())
    _check_fingerprint(info.get("fingerprint", {}), fingerprint, root)
    tag = info["tag"]
    engine.load(root, tag)
    state = torch.load(root / tag / f"loop-rank{dist_info.rank}.pt", map_location="cpu", weights_only=False)
    _set_rng_state(state["rng"], method, data)
    hist = TrainHistory(**state["history"])
    pos = _Position(**state["position"])
    hist.resumed_from_step = pos.global_step
    return pos, hist


# --------------------------------------------------------------------------------------------------
# the loop


def _evaluate(eval_hook: EvalHook | None, module: nn.Module, epoch: int | float, step: int,
              history: TrainHistory, on_eval: Callable[[dict[str, Any]], None] | None) -> None:
    if eval_hook is None:
        return
    was_training = module.training
    module.eval()
    with torch.no_grad():
        metrics = eval_hook(module, epoch)
    module.train(was_training)
    if metrics is not None:  # a hook may skip a point by returning None
        record = {"epoch": epoch, "step": step, **dict(metrics)}
        history.evals.append(record)
        if on_eval is not None:
            on_eval(record)


def _epoch_batches(method: UnlearningMethod, data: ForgetRetainDataset, epoch: int, dist_info: DistInfo,
                   batch_size: int) -> list[list[int]]:
    """This rank's micro-batches of ``epoch``: the method's own plan (``micro_batches`` hook) or the data's order."""
    plan = _hook(method, "micro_batches")
    planned = plan(data, epoch, dist_info.rank, dist_info.world, batch_size) if plan is not None else None
    return planned if planned is not None else data.micro_batches(epoch, dist_info.rank, dist_info.world, batch_size)


def _end_epoch(hook: Callable[..., Any], engine: Engine, epoch: int, data: ForgetRetainDataset, cfg: LoopConfig,
               dist_info: DistInfo, ref_model: nn.Module | None, method: UnlearningMethod) -> None:
    """The method's end-of-epoch hook, in eval mode without gradients, with this epoch's micro-batches."""
    module = engine.module
    was_training = module.training
    module.eval()
    batches = (to_device(data.collate(indices), dist_info.device)
               for indices in _epoch_batches(method, data, epoch, dist_info, cfg.batch_size))
    with torch.no_grad():
        hook(engine, epoch + 1, batches, ref_model)
    module.train(was_training)


def unlearn(model: nn.Module, method: UnlearningMethod, data: ForgetRetainDataset, cfg: LoopConfig,
            ref_model: nn.Module | None = None, eval_hook: EvalHook | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = True,
            eval_every: float | None = 1.0, on_eval: Callable[[dict[str, Any]], None] | None = None,
            on_step: Callable[[dict[str, Any]], None] | None = None) -> TrainHistory:
    """Unlearn ``data``'s forget set from ``model`` with ``method``; returns the TrainHistory.
    ``eval_every``: epochs between evaluation points (None: only at the start and the end); ``on_eval(record)``
    receives each evaluation record ({"epoch", "step", **metrics}) as it is made (e.g. to report it);
    ``on_step(record)`` receives, on every rank, the position once before the first step and after every
    optimizer step ({"step", "epoch" (progress), "total_steps" (the step this call stops at), "steps_per_epoch",
    "epochs", "points_left" (evaluation points still to come), "rank", "time_s"}, plus "loss" and "lr" after a
    step; before that step's evaluation, if any): progress only, never an evaluation point.

    ``ref_model`` is needed only when ``method.needs_ref_model`` (KL/JSD retain, RMU, UNDIAL); NPO/TNPO/
    IdkDPO read the reference log-probs cached in ``data`` (``data.attach_ref_logps``)."""
    if not isinstance(cfg, LoopConfig):
        cfg = LoopConfig.model_validate(cfg)
    if method.needs_ref_model and ref_model is None:
        raise ConfigError(getattr(method, "name", "method"), field="ref_model", value=None,
                          fix="this method needs a live frozen reference model: pass ref_model=frozen_copy(model)")
    missing = [k for k in method.needs_ref_logps if k not in data.ref_logps]
    if missing and ref_model is None:
        raise ConfigError(getattr(method, "name", "method"), field="ref_logps", value=missing,
                          fix="cache them first: data.attach_ref_logps(ref_model, keys=method.needs_ref_logps)")
    t0 = time.perf_counter()
    dist_info = init_distributed(cfg.engine)
    torch.manual_seed(cfg.seed)
    data.start(cfg.seed, dist_info.rank)

    n = len(data)
    micro = (len(_epoch_batches(method, data, 0, dist_info, cfg.batch_size)) if _hook(method, "micro_batches")
             else micro_batches_per_epoch(n, cfg.batch_size, dist_info.world))
    steps_per_epoch = math.ceil(micro / cfg.grad_accum)
    total = cfg.epochs * steps_per_epoch
    warmup = warmup_steps_for(cfg.warmup_epochs, n, cfg.batch_size, cfg.grad_accum, dist_info.world)
    engine = build_engine(model, trainable_named_params(model, method), cfg, total, warmup, dist_info)
    if ref_model is not None:
        ref_model.to(dist_info.device).eval()

    fingerprint = _fingerprint(cfg, n, dist_info.world)
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    pos, history = _Position(), TrainHistory(total_steps=total, warmup_steps=warmup, steps_per_epoch=steps_per_epoch,
                                             world_size=dist_info.world)
    loaded = _load(root, engine, method, data, fingerprint, dist_info) if root is not None and resume else None
    if loaded is not None:
        pos, history = loaded
    else:
        _evaluate(eval_hook, engine.module, 0, 0, history, on_eval)

    stop = cfg.stop_after_epoch if cfg.stop_after_epoch is not None else cfg.epochs
    last_step = step_at(stop, steps_per_epoch)
    points = eval_points(stop, steps_per_epoch, eval_every)
    begin_micro_batch, end_epoch = _hook(method, "begin_micro_batch"), _hook(method, "end_epoch")

    def progress(pending: bool = True, **extra: Any) -> None:
        if on_step is not None:  # points_left: evaluation points still to come (the one at this step if pending)
            left = sum(1 for p in points if p > pos.global_step or (pending and p == pos.global_step))
            on_step({"step": pos.global_step, "epoch": epoch_label(pos.global_step / steps_per_epoch),
                     "total_steps": last_step, "steps_per_epoch": steps_per_epoch, "epochs": stop,
                     "points_left": left, "rank": dist_info.rank, "time_s": time.perf_counter() - t0, **extra})

    progress(pending=False)
    for epoch in range(pos.epoch, math.ceil(stop - 1e-9)):
        batches = _epoch_batches(method, data, epoch, dist_info, cfg.batch_size)
        groups = [batches[i:i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]
        for s in range(pos.step_in_epoch, min(len(groups), last_step - epoch * steps_per_epoch)):
            group = groups[s]
            sums = torch.zeros(3, dtype=torch.float64)
            for k, indices in enumerate(group):
                engine.begin_micro(last=k == len(group) - 1)
                if begin_micro_batch is not None:
                    begin_micro_batch(k, len(group))
                batch = to_device(data.collate(indices), dist_info.device)
                out = method.loss(engine, batch, ref_model)
                engine.backward(out.loss / len(group))
                sums += torch.stack([out.loss.detach(), out.forget_loss.detach(),
                                     out.retain_loss.detach()]).double().cpu()
            means = all_reduce_mean(sums / len(group), dist_info).tolist()
            values = {"loss": means[0], "forget_loss": means[1], "retain_loss": means[2]}
            if not all(math.isfinite(v) for v in means):
                raise TrainingDiverged(epoch, pos.global_step + 1, values)
            lr = engine.lr()
            engine.step()
            pos = _Position(epoch, s + 1, pos.global_step + 1)
            # "epoch": training progress after this step, on the evaluation points' scale (1 = end of the first)
            history.steps.append({"step": pos.global_step, "epoch": epoch_label(epoch + (s + 1) / len(groups)),
                                  "lr": lr, **values,
                                  "time_s": time.perf_counter() - t0})
            progress(loss=values["loss"], lr=lr)
            mid_epoch = s + 1 < len(groups)
            if pos.global_step in points and mid_epoch:
                _evaluate(eval_hook, engine.module, points[pos.global_step], pos.global_step, history, on_eval)
            if root is not None and cfg.save_every_steps and mid_epoch and pos.global_step % cfg.save_every_steps == 0:
                _save(root, engine, pos, history, method, data, fingerprint, cfg.keep_checkpoints, dist_info)
        if pos.step_in_epoch < len(groups):  # stopped inside this epoch (a fractional stop_after_epoch)
            break
        if end_epoch is not None:
            _end_epoch(end_epoch, engine, epoch, data, cfg, dist_info, ref_model, method)
        pos = _Position(epoch + 1, 0, pos.global_step)
        if pos.global_step in points:
            _evaluate(eval_hook, engine.module, points[pos.global_step], pos.global_step, history, on_eval)
        if root is not None:
            _save(root, engine, pos, history, method, data, fingerprint, cfg.keep_checkpoints, dist_info)

    engine.finish()
    engine.module.eval()
    history.wall_s += time.perf_counter() - t0
    return history
