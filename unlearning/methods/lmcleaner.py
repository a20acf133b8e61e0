"""LMCleaner (batch level): online unlearning from a logged training run (open-unlearning PR #170 @ c104723,
``src/trainer/unlearn/lmcleaner_batch.py`` + ``lmcleaner_core.py``, ``configs/trainer/LMCleanerBatch.yaml``).

No gradient descent on the forget set: the forget batches' own updates are taken back out of the final weights,
propagated forward through the training steps that followed them with Hessian-vector products:

* forget steps: the logged optimizer steps whose batch holds a forget example (``training_log``, see
  lmcleaner_log.py; the forget rows are found among the log's rows by their token ids), those <= tau (``max_step``,
  default the last step), ascending;
* for each forget step tz: v = -u[tz]; for s = tz+1 .. min(tz + K, end): v <- v - eta_s * H_s v, then (``damping``
  lambda > 0) v <- v - eta_s * lambda * v, where H_s v is the Hessian-vector product of the HF mean loss of step s's
  batch at the **current** weights (the reference's ``hvp_ggn``: double backward of g.v, all trainable parameters);
  then theta <- theta + v (so later forget steps see the earlier corrections, as the reference).
* ``log_alignment``: ``update`` (default) pairs step t's batch with its own update u_t = theta_{t+1} - theta_t and
  propagates to the last step (end = N - 1), which is the algorithm the reference states (its config: "delta[tz+1] =
  -eta_tz * gbar[tz]"); ``reference`` reproduces its TrainingLogger's pairing: the u logged with step j is taken
  before step j's optimizer update (so it is step j-1's update, step 0's is zero), tau = the last logged step and the
  propagation stops at tau - 1.

The loop runs the whole correction as its first step (``micro_batches`` hook: one micro-batch per epoch; the loss
handed back has no gradient: set ``weight_decay: 0``, as the preset does; later epochs change nothing, so run
``epochs: 1``). The reference's optional fine-tuning afterwards (``num_train_epochs: 0`` by default) is not run.
Defaults (LMCleanerBatch.yaml): K 800 (``window``; alias ``K``), hessian_mode GGN, damping 1e-4, max_step null.
``training_log`` is required (LMCleanerBatch.yaml: ``training_log_dir: ???``): a log folder, or ``zoo`` for a
tofu-mini zoo model, whose run ``unlearn-sweep train`` records on demand (``unlearning.models.training_log``).
Not reproduced: hessian_mode ``diag`` / ``low_rank`` (the reference's diag is an element-by-element demo, low_rank a
TODO falling back to GGN), the sample-level variant (lmcleaner_sample.py). One process, torch engine or ZeRO 0.

    method = build_method("LMCleaner", training_log="runs/sft/training_log", K=16)
    method.prepare_model(model, data, tokenizer)     # reads the log, finds the forget steps
    method.loss(model, batch)                        # applies every correction, once
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import bare_module, LossOutput, Method, check_choice, check_number
from unlearning.methods.lmcleaner_log import TrainingLog, open_stored_log

HESSIAN_MODES = ("GGN", "exact")          # both: the HVP of the batch's HF loss (the reference's hvp_ggn)
ALIGNMENTS = ("update", "reference")
MISSING_LOG_FIX = ("point it at the training run's log folder (steps.jsonl, rows.jsonl, updates/; "
                   "unlearning.methods.lmcleaner_log.LogRecorder writes one), or 'zoo' for a tofu-mini zoo model")


@dataclass
class LMCleanerConfig:
    """training_log (required before training: a log folder or "zoo"), window=800 (the reference's K),
    hessian_mode="GGN", damping=1e-4, max_step=None (tau: the last logged step), log_alignment="update" (or
    "reference")."""

    training_log: str | None = None
    window: int = 800
    hessian_mode: str = "GGN"
    damping: float = 1e-4
    max_step: int | None = None
    log_alignment: str = "update"



def hvp(model: nn.Module, batch: Mapping[str, Tensor], v: Tensor, params: list[nn.Parameter]) -> Tensor:
    """H v of the batch's HF mean loss at the current weights (double backward of g . v), flat."""
    loss = model(**batch).loss
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gv = sum((g * part).sum() for g, part in zip(grads, _split(v, params)))
    return torch.cat([h.reshape(-1) for h in torch.autograd.grad(gv, params)])


def _split(v: Tensor, params: list[nn.Parameter]) -> list[Tensor]:
    out, offset = [], 0
    for p in params:
        out.append(v[offset: offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


class LMCleaner(Method):
    """Batch-level LMCleaner: the forget batches' updates propagated forward and subtracted."""

    name = "LMCleaner"
    config_cls = LMCleanerConfig
    unit = "sample"
    wrappable = False

    def __init__(self, config: LMCleanerConfig | None = None) -> None:
        super().__init__(config)
        self.log: TrainingLog | None = None
        self.forget_steps: list[int] | None = None
        self.applied = False
        self.audit: list[dict[str, float]] = []

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if cfg.training_log is not None and (not isinstance(cfg.training_log, str) or not cfg.training_log):
            raise ConfigError(self.name, field="training_log", value=cfg.training_log, fix=MISSING_LOG_FIX)
        folder = None if cfg.training_log in (None, "zoo") else Path(cfg.training_log).expanduser()
        if folder is not None and not (folder / "steps.jsonl").is_file():
            raise ConfigError(self.name, field="training_log", value=cfg.training_log,
                              fix="no training log there (steps.jsonl missing): give the folder the training run's "
                                  "LogRecorder wrote, or 'zoo' for a tofu-mini zoo model")
        for key, low in (("window", 1), ("max_step", 0)):
            value = getattr(cfg, key)
            if (value is not None or key == "window") and (not isinstance(value, int) or isinstance(value, bool)
                                                           or value < low):
                raise ConfigError(self.name, field=key, value=value, fix=f"use an integer >= {low}")
        check_number(self.name, "damping", cfg.damping)
        if cfg.damping < 0:
            raise ConfigError(self.name, field="damping", value=cfg.damping, fix="use damping >= 0")
        check_choice(self.name, "hessian_mode", cfg.hessian_mode, HESSIAN_MODES)
        check_choice(self.name, "log_alignment", cfg.log_alignment, ALIGNMENTS)

    @property
    def needs_ref_model(self) -> bool:
        return False

    def micro_batches(self, data: Any, epoch: int, rank: int, world: int, batch_size: int) -> list[list[int]]:
        """One micro-batch per epoch: the whole correction runs in the first step."""
        if world > 1:
            raise ConfigError(self.name, field="train.engine", value=f"world={world}",
                              fix="LMCleaner changes the weights in place: run one process")
        return [[0]]

    def state_dict(self) -> dict[str, Any]:
        return {"applied": self.applied}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.applied = bool(state.get("applied", False))

    def attach_log(self, log: TrainingLog) -> None:
        """Use an opened log (run_train attaches the zoo's replayed log for ``training_log: zoo``)."""
        self.log = log

    def prepare_model(self, model: nn.Module, data: Any, tokenizer: Any) -> nn.Module:
        """Open the log and find the forget steps (before any compute); returns the model unchanged."""
        if self.log is None and self.config.training_log is None:
            raise ConfigError(self.name, field="training_log", value=None, fix=MISSING_LOG_FIX)
        if self.log is None:
            if self.config.training_log == "zoo":
                raise ConfigError(self.name, field="training_log", value="zoo",
                                  fix="the zoo's log is attached by unlearn-sweep train (run_train); elsewhere give "
                                      "a log folder (unlearning.models.training_log.zoo_training_log(name) makes one)")
            self.log = open_stored_log(self.config.training_log)
        if self.log.final is not None:   # the log is of a re-run (the zoo's): start from the weights it describes
            params = [p for p in bare_module(model).parameters() if p.requires_grad]
            if self.log.final.numel() != sum(p.numel() for p in params):
                raise ConfigError(self.name, field="training_log", value=self.config.training_log,
                                  fix="the log's final weights do not fit this model: use the log's own model")
            with torch.no_grad():
                for p, part in zip(params, _split(self.log.final, params)):
                    p.copy_(part.to(device=p.device, dtype=p.dtype))
        positions: dict[tuple[int, ...], list[int]] = {}
        for i, row in enumerate(self.log.rows):
            positions.setdefault(tuple(row["input_ids"]), []).append(i)
        forget = {i for row in data.forget for i in positions.get(tuple(int(t) for t in row["input_ids"]), [])}
        if not forget:
            raise ConfigError(self.name, field="training_log", value=self.config.training_log,
                              fix="none of the forget rows is among the log's training rows (another run, "
                                  "tokenizer, template or max_length?)")
        self.forget_steps = [s.step for s in self.log.steps if forget.intersection(s.indices)]
        return model

    def _plan(self) -> tuple[list[int], int, Any]:
        """(forget steps, the last propagation step, update(tz)) under the configured alignment."""
        log, cfg = self.log, self.config
        n = len(log.steps)
        if cfg.log_alignment == "reference":   # record j: batch j, eta j, the update of step j-1; tau = n - 1
            tau = cfg.max_step if cfg.max_step is not None else n - 1
            update = (lambda t: log.update(t - 1) if t > 0 else torch.zeros_like(log.update(0)))
            return [t for t in self.forget_steps if t <= tau], tau - 1, update
        tau = cfg.max_step if cfg.max_step is not None else n - 1
        return [t for t in self.forget_steps if t <= tau], tau, log.update

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        if self.log is None or self.forget_steps is None:
            raise ConfigError(self.name, field="training_log", value=self.config.training_log,
                              fix="open it first: method.prepare_model(model, data, tokenizer) (run_train does)")
        if getattr(model, "zero_stage", 0) > 0 or getattr(getattr(model, "dist", None), "world", 1) > 1:
            raise ConfigError(self.name, field="train.engine", value="sharded or multi-process",
                              fix="LMCleaner changes the weights in place: one process, engine torch or zero_stage 0")
        net = bare_module(model)
        params = [p for p in net.parameters() if p.requires_grad]
        if not self.applied:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):   # the fused kernels have no double backward
                self._apply(net, params)
            self.applied = True
        norm = torch.tensor(sum(a["v_norm"] for a in self.audit), device=params[0].device)
        zero = 0.0 * sum(p.reshape(-1)[0] for p in params)   # no gradient: the correction already moved the weights
        return LossOutput(norm + zero, norm, torch.zeros_like(norm), norm.reshape(1), "sample",
                          {"lmcleaner_steps": torch.tensor(float(len(self.audit)))})

    def _apply(self, net: nn.Module, params: list[nn.Parameter]) -> None:
        steps, end, update = self._plan()
        device, dtype = params[0].device, params[0].dtype
        for tz in steps:
            v = -update(tz).to(device=device, dtype=dtype)
            used = 0
            for s in range(tz + 1, min(tz + self.config.window, end) + 1):
                eta = self.log.steps[s].lr
                batch = {k: t.to(device) for k, t in self.log.batch(s).items()}
                v = v - eta * hvp(net, batch, v, params).detach()
                if self.config.damping > 0:
                    v = v - eta * self.config.damping * v
                used += 1
            with torch.no_grad():
                for p, part in zip(params, _split(v, params)):
                    p.add_(part)
            self.audit.append({"tz": tz, "K_used": used, "v_norm": float(v.norm())})
