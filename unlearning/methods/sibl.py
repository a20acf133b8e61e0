"""SIBL, sparse bilevel augmented-Lagrangian unlearning (open-unlearning ``src/trainer/unlearn/sibl.py``, S-BiAL).

Reference: locuslab/open-unlearning pull request #159, ``src/trainer/unlearn/sibl.py`` and
``configs/trainer/SIBL.yaml`` at a291f94023227b23bfeb19aade3b66e31c9bd783 (docs/methods-fidelity.md).
SIBL is a training procedure rather than a loss: the reference overrides the trainer's ``train`` and updates the
weights itself. Procedure (``outer_steps`` = the reference's ``T``, default 20): T outer iterations, each on the
**first batch of a fresh iterator** over the (shuffled) forget/retain data, i.e. ``batch_size`` forget rows drawn
anew at random for every iteration (rows may repeat across iterations), with one retain row drawn per forget row.
The loop runs them as one epoch of T micro-batches (``micro_batches`` hook; ``train.epochs`` > 1 repeats the T
iterations, evaluation points at fractions of the epoch: ``eval.every: 0.25`` = every 5 of 20). ``outer_steps:
null`` is the project's former form: one outer iteration per loop micro-batch (an epoch = a pass over the forget
set). One outer iteration t:

1. mask M (once, from the initial weights): ``sparsity_method="layerwise_magnitude"`` keeps, in every weight
   matrix (a parameter whose name contains "weight" with >= 2 dims), the entries with |w| >= the ``sparsity``
   quantile of that matrix's |w| (matrices over 10M entries: the quantile of 1M entries drawn with torch's
   global RNG, as the reference); everything else (biases, norms, vectors) is 1. ``use_sparsity=false``: M = 1.
2. inner loop, ``inner_steps`` (K) times on the retain micro-batch: w <- w - eta_in * M * grad(NLL_retain +
   l1_coeff * sum |w| * M) (plain SGD, applied in place).
3. outer step: L_forget = mean over **all** B*T positions of the forget micro-batch (prompt and padding
   included) of (max_v z - mean_v z) (not squared, unlike PDU); L_retain = HF-mean NLL of the retain micro-batch;
   r = L_retain - retain_loss_eps (a Python float, so the penalty 0.5*rho*r^2 is a constant);
   L_alm = L_forget + lambda * L_retain + 0.5*rho*r^2 and g = grad L_alm.
   ``use_implicit`` (default): L_inner = NLL_retain + l1_coeff * sum |w| M (a new forward), v = M * grad L_inner,
   h solves (M H_inner M) h = v by conjugate gradients (scipy's ``cg``: ``cg_iters`` iterations, absolute
   tolerance ``cg_tol``, x0 = 0, exactly the reference's call) and g <- g - H_alm h (Hessian-vector products
   by double backward; attention runs on PyTorch's math SDPA kernel for that, the fused ones have none).
4. update: ``outer_update="sgd"`` (default, the reference): w <- w - eta_theta * M * g in place; the loss handed to
   the loop then has a zero gradient, so the loop's AdamW moves nothing (set ``weight_decay: 0`` for the exact
   reference trajectory: AdamW's decoupled decay still shrinks the weights by lr*weight_decay per step; the
   preset search_spaces/sibl.yaml fixes it). ``outer_update="optimizer"``: the loss's gradient is M * g and the
   loop's AdamW (``lr``, schedule) applies it.
5. dual: lambda <- max(0, lambda + rho * r).

The reference's trainer ``learning_rate`` and epochs are unused by it; its batch is ``per_device_train_batch_size``
2 (SIBL.yaml), the preset's. Scope (the weights are changed in place): one process, the torch engine or DeepSpeed
ZeRO 0 in float32; anything else is refused at the first step. lambda and M are per run and not checkpointed (a
resumed run restarts lambda at 0 and rebuilds M from the resumed weights). BalDRO cannot wrap SIBL. The
reference's other mask methods (random, structured, gradual, movement, magnitude_sampling) are not reproduced.
Defaults (reference SIBL.yaml): outer_steps (``T``) 20, retain_loss_eps (``epsilon``) 0.1, rho 1, inner_steps
(``K``) 10, eta_in 1e-4, eta_theta 1e-4, l1_coeff (``gamma``) 1e-4, sparsity 0.9, use_implicit true, cg_iters 10,
cg_tol 1e-3.

    out = build_method("SIBL", inner_steps=2, cg_iters=5).loss(model, batch)   # updates model in place
    build_method("SIBL", T=20).micro_batches(data, epoch=0, rank=0, world=1, batch_size=2)   # 20 fresh batches
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (bare_module, ForgetTerms, LossOutput, Method, check_choice, check_number, check_positive,
                                     hf_mean_nll, inputs_of, logits_of)

SPARSITY_METHODS = ("layerwise_magnitude",)
OUTER_UPDATES = ("sgd", "optimizer")
QUANTILE_LIMIT, QUANTILE_SAMPLE = 10_000_000, 1_000_000


@dataclass
class SIBLConfig:
    """outer_steps=20 (the reference's T; None: one outer iteration per loop micro-batch), retain_loss_eps=0.1
    (retain budget), rho=1.0, inner_steps=10, eta_in=1e-4, eta_theta=1e-4,
    l1_coeff=1e-4, use_sparsity=True, sparsity=0.9, sparsity_method="layerwise_magnitude", use_implicit=True,
    cg_iters=10, cg_tol=1e-3, outer_update="sgd" ("optimizer": the loop's AdamW applies the outer gradient)."""

    outer_steps: int | None = 20
    retain_loss_eps: float = 0.1
    rho: float = 1.0
    inner_steps: int = 10
    eta_in: float = 1e-4
    eta_theta: float = 1e-4
    l1_coeff: float = 1e-4
    use_sparsity: bool = True
    sparsity: float = 0.9
    sparsity_method: str = "layerwise_magnitude"
    use_implicit: bool = True
    cg_iters: int = 10
    cg_tol: float = 1e-3
    outer_update: str = "sgd"


def _outer_seed(seed: int, epoch: int, t: int) -> int:
    """The shuffle seed of outer iteration t of ``epoch`` (a hash: no two (seed, epoch, t) share one)."""
    digest = hashlib.sha256(f"sibl:{seed}:{epoch}:{t}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)



def magnitude_masks(named: list[tuple[str, nn.Parameter]], sparsity: float) -> list[Tensor]:
    """Per parameter: 1 where |w| >= the matrix's ``sparsity`` quantile of |w| (weight matrices), else all ones."""
    masks = []
    for name, p in named:
        if "weight" not in name or p.dim() < 2:
            masks.append(torch.ones_like(p))
            continue
        flat = p.detach().abs().reshape(-1)
        if flat.numel() > QUANTILE_LIMIT:
            flat = flat[torch.randperm(flat.numel(), device=flat.device)[:QUANTILE_SAMPLE]]
        threshold = torch.quantile(flat, sparsity)
        masks.append((p.detach().abs() >= threshold).to(p.dtype))
    return masks


def logit_margin_mean(logits: Tensor) -> Tensor:
    """mean over all B*T positions of (max_v z - mean_v z)."""
    return (logits.max(dim=-1).values - logits.mean(dim=-1)).mean()


def _flat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _grads(loss: Tensor, params: list[nn.Parameter], create_graph: bool = False) -> list[Tensor]:
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def conjugate_gradient(matvec, b: Tensor, iters: int, tol: float) -> Tensor:
    """Solve A x = b with scipy's ``cg`` (x0 = 0, ``iters`` iterations, absolute tolerance ``tol``)."""
    from scipy.sparse.linalg import LinearOperator, cg

    rhs = b.detach().cpu().numpy()
    op = LinearOperator((rhs.size, rhs.size), dtype=rhs.dtype,
                        matvec=lambda x: matvec(torch.from_numpy(x).to(device=b.device, dtype=b.dtype))
                        .detach().cpu().numpy())
    x, _info = cg(op, rhs, maxiter=iters, atol=tol, rtol=0)
    return torch.from_numpy(x).to(device=b.device, dtype=b.dtype)


class SIBL(Method):
    """Bilevel augmented-Lagrangian unlearning on a magnitude-sparse set of weights."""

    name = "SIBL"
    config_cls = SIBLConfig
    unit = "token"
    wrappable = False

    def __init__(self, config: SIBLConfig | None = None) -> None:
        super().__init__(config)
        self.lambda_dual = 0.0
        self.masks: list[Tensor] | None = None

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_number(self.name, "retain_loss_eps", cfg.retain_loss_eps)
        for key in ("rho", "eta_in", "eta_theta", "cg_tol"):
            check_positive(self.name, key, getattr(cfg, key))
        check_number(self.name, "l1_coeff", cfg.l1_coeff)
        if cfg.l1_coeff < 0:
            raise ConfigError(self.name, field="l1_coeff", value=cfg.l1_coeff, fix="use l1_coeff >= 0")
        for key in ("inner_steps", "cg_iters"):
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "inner_steps" else 1):
                raise ConfigError(self.name, field=key, value=value,
                                  fix=f"use an integer >= {0 if key == 'inner_steps' else 1}")
        for key in ("use_sparsity", "use_implicit"):
            if not isinstance(getattr(cfg, key), bool):
                raise ConfigError(self.name, field=key, value=getattr(cfg, key), fix="use true or false")
        check_number(self.name, "sparsity", cfg.sparsity)
        if not 0 <= cfg.sparsity < 1:
            raise ConfigError(self.name, field="sparsity", value=cfg.sparsity,
                              fix="use 0 <= sparsity < 1 (the fraction of each weight matrix left frozen)")
        check_choice(self.name, "sparsity_method", cfg.sparsity_method, SPARSITY_METHODS)
        steps = cfg.outer_steps
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ConfigError(self.name, field="outer_steps", value=steps,
                              fix="use an integer >= 1 (the reference's T, default 20), or null for one outer "
                                  "iteration per loop micro-batch")
        check_choice(self.name, "outer_update", cfg.outer_update, OUTER_UPDATES)

    @property
    def needs_ref_model(self) -> bool:
        return False

    def micro_batches(self, data: Any, epoch: int, rank: int, world: int, batch_size: int) -> list[list[int]] | None:
        """The loop's micro-batches of ``epoch`` (its hook): ``outer_steps`` batches, each the first ``batch_size``
        forget indices of a fresh random order (the reference's ``next(iter(train_dataloader))`` per outer
        iteration), seeded by (the data's seed, epoch, t); None (the loop's own order) when outer_steps is None."""
        steps = self.config.outer_steps
        if steps is None:
            return None
        if world > 1:
            raise ConfigError(self.name, field="train.engine", value=f"world={world}",
                              fix="SIBL changes the weights in place: run one process")
        n, seed = len(data), int(getattr(data, "seed", 0))
        orders = (torch.randperm(n, generator=torch.Generator().manual_seed(_outer_seed(seed, epoch, t)))
                  for t in range(steps))
        return [order.tolist()[:batch_size] for order in orders]

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        z = logits_of(model, inputs_of(batch, "forget"))
        values = z.max(dim=-1).values - z.mean(dim=-1)
        return ForgetTerms(values, "token", torch.ones_like(values, dtype=torch.bool))

    def _check_engine(self, model: Any) -> None:
        world = getattr(getattr(model, "dist", None), "world", 1)
        sharded = getattr(model, "zero_stage", 0) > 0 or (
            type(model).__name__ == "DeepSpeedEngine" and any(p.dtype != torch.float32 for p in bare_module(model).parameters()))
        if world > 1 or sharded:
            raise ConfigError(self.name, field="train.engine", value=f"world={world}, zero_stage="
                              f"{getattr(model, 'zero_stage', 0)}",
                              fix="SIBL changes the weights in place: run one process with engine torch, or "
                                  "deepspeed with zero_stage 0 in float32")

    def _masks(self, named: list[tuple[str, nn.Parameter]]) -> list[Tensor]:
        if self.masks is None:
            self.masks = (magnitude_masks(named, self.config.sparsity) if self.config.use_sparsity
                          else [torch.ones_like(p) for _, p in named])
        return self.masks

    def _l1(self, params: list[nn.Parameter], masks: list[Tensor]) -> Tensor:
        return sum((p.abs() * m).sum() for p, m in zip(params, masks))

    def _inner_loss(self, model: nn.Module, retain: Mapping[str, Tensor], params, masks) -> Tensor:
        return hf_mean_nll(logits_of(model, retain), retain["labels"]) + self.config.l1_coeff * self._l1(params, masks)

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        self._check_engine(model)
        if not self.config.use_implicit:
            return self._loss(model, batch)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]):  # the fused attention kernels have no double backward
            return self._loss(model, batch)

    def _loss(self, model: nn.Module, batch: Mapping[str, Any]) -> LossOutput:
        cfg = self.config
        # every forward goes through the bare module: a DeepSpeed engine's forward output refuses any autograd
        # call outside engine.backward (ZeRO 0), and the procedure's gradients are torch.autograd.grad calls
        model = bare_module(model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        params = [p for _, p in named]
        masks = self._masks(named)
        inputs_of(batch, "forget")  # a DataError before any step when the forget part is missing
        retain_in = inputs_of(batch, "retain")

        for _ in range(cfg.inner_steps):  # inner problem: masked SGD on the retain micro-batch
            grads = _grads(self._inner_loss(model, retain_in, params, masks), params)
            with torch.no_grad():
                for p, g, m in zip(params, grads, masks):
                    p.sub_(cfg.eta_in * g * m)

        terms = self.forget_terms(model, batch)
        forget = terms.values.mean()
        retain = hf_mean_nll(logits_of(model, retain_in), retain_in["labels"])
        residual = float(retain.detach()) - cfg.retain_loss_eps
        alm = forget + self.lambda_dual * retain + 0.5 * cfg.rho * residual ** 2
        direction = _grads(alm, params)  # first-order pass (the double-backward formulas round differently)
        if cfg.use_implicit:
            m_flat = _flat(masks)
            g_inner = _flat(_grads(self._inner_loss(model, retain_in, params, masks), params, create_graph=True))

            def inner_hvp(x: Tensor) -> Tensor:
                return _flat(_grads((g_inner * (x * m_flat)).sum(), params)) * m_flat

            h = conjugate_gradient(inner_hvp, (g_inner * m_flat).detach(), cfg.cg_iters, cfg.cg_tol)
            correction = _grads((_flat(_grads(alm, params, create_graph=True)) * h).sum(), params)
            direction = [d - c.detach() for d, c in zip(direction, correction)]
        direction = [d * m for d, m in zip(direction, masks)]
        self.lambda_dual = max(0.0, self.lambda_dual + cfg.rho * residual)

        value = alm.detach()
        if cfg.outer_update == "sgd":
            with torch.no_grad():
                for p, d in zip(params, direction):
                    p.sub_(cfg.eta_theta * d)
            surrogate = value + 0.0 * sum(p.reshape(-1)[0] for p in params)  # zero gradient: AdamW moves nothing
        else:
            linear = sum((p * d).sum() for p, d in zip(params, direction))
            surrogate = value + (linear - linear.detach())
        return LossOutput(surrogate, forget.detach(), retain.detach(), terms.elements().detach(), "token",
                          {"sibl_lambda": torch.tensor(self.lambda_dual), "sibl_residual": torch.tensor(residual)})
