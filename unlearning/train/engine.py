"""Training engines behind the loop: DeepSpeed (ZeRO 0-3) or plain PyTorch, one interface.

    from unlearning.train.engine import build_engine, init_distributed
    dist_info = init_distributed("deepspeed")            # 1 process on a free 127.0.0.1 port unless launched
    engine = build_engine(model, named_params, cfg, total_steps=20, warmup_steps=2, dist_info=dist_info)
    for k, mb in enumerate(group):
        engine.begin_micro(last=k == len(group) - 1)
        loss = method.loss(engine, batch).loss
        engine.backward(loss / len(group))
    engine.step()                                        # clip, AdamW, LR schedule, zero grads

Both engines use the same client ``torch.optim.AdamW`` (betas 0.9/0.999, eps 1e-8; no weight decay on
biases and normalisation weights, as the HF Trainer) and the same LR schedule (HF's linear warmup then
linear decay to 0, or constant after warmup), clip the global gradient norm at ``max_grad_norm``, and
give parameters without a gradient a zero one (AdamW still decays them, as ZeRO's flat buffers do).

* DeepSpeed: ``deepspeed.initialize`` with the client optimizer and scheduler, ZeRO ``zero_stage``,
  bf16 when the model's weights are bfloat16 (fp32 master weights in the optimizer), fp32 otherwise.
  On the CPU: ``DS_ACCELERATOR=cpu`` and the gloo backend; ``TORCH_EXTENSIONS_DIR`` defaults to
  ``<repo>/.cache/torch_extensions`` (the first init on a machine JIT-compiles shm_comm, ~45 s; later
  inits reuse it). Gradient accumulation is driven by the loop (``set_gradient_accumulation_boundary``),
  so an epoch's last, shorter accumulation group works like any other.
* torch: the same optimizer and scheduler on the bare module; with several processes (launched with
  torchrun) it broadcasts rank 0's weights once and averages gradients with all-reduce before each step,
  like DDP. bfloat16 weights are trained as they are (no fp32 master copy): a debugging path.

Single process, not launched: DeepSpeed gets a one-process group at tcp://127.0.0.1:<free port> (rank 0,
world 1), created without setting MASTER_PORT in os.environ, so subprocesses do not inherit a port that
is taken (only LOCAL_RANK=0, which deepspeed.initialize requires); the torch engine needs no group then.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
import torch.distributed as tdist
from torch import nn

from unlearning.errors import ConfigError
from unlearning.paths import torch_extensions_dir
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
NO_DECAY_NAME_PARTS = ("bias", "norm")


# --------------------------------------------------------------------------------------------------
# environment and process group


def ensure_env() -> None:
    """DS_ACCELERATOR=cpu without CUDA; TORCH_EXTENSIONS_DIR=<repo>/.cache/torch_extensions unless set."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(torch_extensions_dir()))


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: global rank, world size, local rank and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device


def _device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(engine: str) -> DistInfo:
    """Join (or create) the process group the engine needs and describe this process.

    Launched (WORLD_SIZE set by torchrun / a spawner) -> env:// with gloo on CPU, nccl on CUDA.
    Not launched -> DeepSpeed gets a one-process group on 127.0.0.1:<free port>; torch gets none."""
    ensure_env()
    if tdist.is_available() and tdist.is_initialized():  # e.g. Ray Train's workers, or an earlier run
        rank, world = tdist.get_rank(), tdist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank if not torch.cuda.is_available()
                                   else rank % max(1, torch.cuda.device_count())))
        os.environ.setdefault("LOCAL_RANK", str(local))  # deepspeed.initialize insists on it
        return DistInfo(rank, world, local, _device(local))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 and engine == "torch":
        return DistInfo(0, 1, 0, _device(0))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if world == 1:  # a private one-process group; no MASTER_PORT in os.environ (children would inherit it)
        tdist.init_process_group(backend=backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                                 world_size=1)
        os.environ.setdefault("LOCAL_RANK", "0")  # deepspeed.initialize insists on it
    else:
        tdist.init_process_group(backend=backend)
    if engine == "deepspeed":
        import deepspeed

        # wraps the group above; its CPU build prints "DeepSpeed ...shm_comm_op built successfully" to stdout
        # in every trial, a line nobody can act on
        with contextlib.redirect_stdout(io.StringIO()):
            deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    rank, world = tdist.get_rank(), tdist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", rank))
    return DistInfo(rank, world, local, _device(local))


def all_reduce_mean(values: torch.Tensor, dist_info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over ranks (the tensor itself with one process)."""
    if dist_info.world == 1:
        return values
    out = values.detach().clone().to(dist_info.device if dist_info.device.type == "cuda" else "cpu")
    tdist.all_reduce(out, op=tdist.ReduceOp.SUM)
    return out / dist_info.world


def barrier(dist_info: DistInfo) -> None:
    if dist_info.world > 1:
        tdist.barrier()


# --------------------------------------------------------------------------------------------------
# optimizer and schedule (shared by both engines)


def _no_decay_names(model: nn.Module) -> set[str]:
    """Parameters the HF Trainer exempts from weight decay: biases and normalisation-layer weights."""
    out: set[str] = set()
    for mod_name, module in model.named_modules():
        is_norm = "norm" in type(module).__name__.lower()
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if is_norm or p_name == "bias":
                out.add(full)
    return out


def param_groups(model: nn.Module, named_params: Iterable[tuple[str, nn.Parameter]],
                 weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices/embeddings, none on biases and norm weights."""
    exempt = _no_decay_names(model)
    decay, no_decay = [], []
    for name, p in named_params:
        (no_decay if name in exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def lr_lambda(warmup_steps: int, total_steps: int, kind: str = "linear") -> Callable[[int], float]:
    """HF's schedules as a LambdaLR factor of the completed optimizer steps ``s``:
    linear: s/warmup during warmup, then (total - s)/(total - warmup) down to 0; constant: 1 after warmup."""
    def factor(s: int) -> float:
        if s < warmup_steps:
            return s / max(1, warmup_steps)
        if kind == "constant":
            return 1.0
        return max(0.0, (total_steps - s) / max(1, total_steps - warmup_steps))
    return factor


def warmup_steps_for(warmup_epochs: float, n_forget: int, batch_size: int, grad_accum: int, world: int) -> int:
    """OU's conversion: floor(warmup_epochs * |forget| / (batch * grad_accum * world))."""
    return int(math.floor(warmup_epochs * n_forget / (batch_size * grad_accum * world)))


def zero_fill_grads(params: Iterable[nn.Parameter]) -> None:
    """Give parameters that got no gradient this step a zero one, so AdamW still decays them (and
    advances their moments), as DeepSpeed's ZeRO optimizers do with their flat gradient buffers (RMU's
    forget/retain losses, for instance, never reach lm_head)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def make_optimizer(model: nn.Module, named_params: list[tuple[str, nn.Parameter]], lr: float,
                   weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, named_params, weight_decay), lr=lr, betas=ADAM_BETAS,
                             eps=ADAM_EPS)


# --------------------------------------------------------------------------------------------------
# engines


class Engine(Protocol):
    """What the loop needs from an engine."""

    module: nn.Module
    dist: DistInfo

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def begin_micro(self, last: bool) -> None: ...
    def backward(self, loss: torch.Tensor) -> None: ...
    def step(self) -> None: ...
    def lr(self) -> float: ...
    def save(self, root: Path, tag: str) -> None: ...
    def load(self, root: Path, tag: str) -> None: ...
    def finish(self) -> None: ...


class TorchEngine:
    """Plain PyTorch: the module itself, AdamW, LambdaLR; all-reduced gradients with several ranks."""

    def __init__(self, model: nn.Module, named_params: list[tuple[str, nn.Parameter]], lr: float,
                 weight_decay: float, max_grad_norm: float, schedule: Callable[[int], float],
                 dist_info: DistInfo) -> None:
        self.module, self.dist, self.max_grad_norm = model, dist_info, max_grad_norm
        self.module.to(dist_info.device)
        self.params = [p for _, p in named_params]
        if dist_info.world > 1:
            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    tdist.broadcast(t.data, src=0)
        self.optimizer = make_optimizer(model, named_params, lr, weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.module.train()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def begin_micro(self, last: bool) -> None:
        pass

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def _all_reduce_grads(self) -> None:
        for p in self.params:
            tdist.all_reduce(p.grad, op=tdist.ReduceOp.SUM)
            p.grad.div_(self.dist.world)

    def step(self) -> None:
        zero_fill_grads(self.params)
        if self.dist.world > 1:
            self._all_reduce_grads()
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, root: Path, tag: str) -> None:
        if self.dist.rank == 0:
            path = Path(root) / tag
            path.mkdir(parents=True, exist_ok=True)
            torch.save({"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict()}, path / "engine.pt")

    def load(self, root: Path, tag: str) -> None:
        state = torch.load(Path(root) / tag / "engine.pt", map_location=self.dist.device, weights_only=False)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def finish(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)


class DeepSpeedEngine:
    """``deepspeed.initialize`` around the module with the client AdamW and LambdaLR."""

    def __init__(self, model: nn.Module, named_params: list[tuple[str, nn.Parameter]], lr: float,
                 weight_decay: float, max_grad_norm: float, schedule: Callable[[int], float],
                 dist_info: DistInfo, zero_stage: int, batch_size: int, grad_accum: int) -> None:
        import deepspeed

        self.dist, self.zero_stage = dist_info, zero_stage
        bf16 = next(model.parameters()).dtype == torch.bfloat16
        # ZeRO 0 in fp32 hands the client AdamW the module's own gradients: zero-fill missing ones there
        self.raw_params = [p for _, p in named_params] if zero_stage == 0 and not bf16 else []
        config = {
            "train_micro_batch_size_per_gpu": batch_size,
            "gradient_accumulation_steps": grad_accum,
            "train_batch_size": batch_size * grad_accum * dist_info.world,
            "gradient_clipping": float(max_grad_norm),
            "zero_optimization": {"stage": zero_stage},
            "bf16": {"enabled": bf16},
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 10 ** 12,
            "wall_clock_breakdown": False,
        }
        optimizer = make_optimizer(model, named_params, lr, weight_decay)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, config=config, dist_init_required=False,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
        self.module = self.engine.module
        self.engine.train()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.engine(*args, **kwargs)

    def begin_micro(self, last: bool) -> None:
        self.engine.set_gradient_accumulation_boundary(last)

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)

    def step(self) -> None:
        zero_fill_grads(self.raw_params)
        self.engine.set_gradient_accumulation_boundary(True)
        self.engine.step()
        self.engine.zero_grad()

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, root: Path, tag: str) -> None:
        self.engine.save_checkpoint(str(root), tag=tag, client_state={}, save_latest=False)

    def load(self, root: Path, tag: str) -> None:
        path, _ = self.engine.load_checkpoint(str(root), tag=tag, load_optimizer_states=True,
                                              load_lr_scheduler_states=True)
        if path is None:
            raise ConfigError(str(root), field="checkpoint", value=tag,
                              fix="the DeepSpeed checkpoint could not be loaded; delete the folder to start over")

    def finish(self) -> None:
        """Leave ``self.module`` a plain, fully materialised module (ZeRO-3 gathers the partitions)."""
        if self.zero_stage == 3:
            import deepspeed

            params = dict(self.module.named_parameters())
            with deepspeed.zero.GatheredParameters(list(params.values()), modifier_rank=None):
                full = {n: p.data.detach().clone() for n, p in params.items()}
            self.engine.destroy()
            for n, p in params.items():
                p.data = full[n]
                for attr in [a for a in vars(p) if a.startswith("ds_")]:
                    delattr(p, attr)
        else:
            self.engine.destroy()
        self.module.zero_grad(set_to_none=True)


def build_engine(model: nn.Module, named_params: list[tuple[str, nn.Parameter]], cfg: Any, total_steps: int,
                 warmup_steps: int, dist_info: DistInfo) -> Engine:
    """The engine named by ``cfg.engine`` ("deepspeed" or "torch") with the shared optimizer/schedule."""
    schedule = lr_lambda(warmup_steps, total_steps, cfg.lr_scheduler)
    if cfg.engine == "torch":
        return TorchEngine(model, named_params, cfg.lr, cfg.weight_decay, cfg.max_grad_norm, schedule, dist_info)
    if cfg.engine == "deepspeed":
        model.to(dist_info.device)
        return DeepSpeedEngine(model, named_params, cfg.lr, cfg.weight_decay, cfg.max_grad_norm, schedule,
                               dist_info, cfg.zero_stage, cfg.batch_size, cfg.grad_accum)
    raise ConfigError("train", field="engine", value=cfg.engine, fix="use 'deepspeed' or 'torch'")
