"""The reference procedures that are more than a loss: PDU (primal-dual), GRU (gradient projection), SIBL (bilevel).

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .shared import IGNORE, hf_loss

class PDUReference:
    """Copied from locuslab/open-unlearning src/trainer/unlearn/pdu.py @ d3d7cf9e6b3c125d16687d4232680d8d83548f1a:
    PDU.__init__ (can_update), final_loss_value (per-call dual update when ``dual_update_upon="step"`` and the
    warm-up is over), post_epoch_dual_param_update and DualOptimizationCallback.on_epoch_end (added only with
    primal_dual)."""

    def __init__(self, gamma, alpha, retain_loss_eps, primal_dual, dual_step_size, dual_update_upon="step",
                 dual_warmup_epochs=0):
        self.preferences = [gamma, alpha]
        self.retain_loss_eps, self.primal_dual, self.dual_step_size = retain_loss_eps, primal_dual, dual_step_size
        self.dual_update_upon = dual_update_upon
        self.dual_warmup_epochs = dual_warmup_epochs
        self.can_update = dual_warmup_epochs == 0

    def __call__(self, forget_loss, retain_loss):
        retain_loss = retain_loss - self.retain_loss_eps
        scaledLosses = torch.tensor(self.preferences) * torch.hstack([forget_loss, retain_loss])
        loss = scaledLosses.sum()
        if self.primal_dual and self.can_update and self.dual_update_upon == "step":
            self.preferences[1] = max(0, self.preferences[1] + self.dual_step_size * retain_loss.item())
        return loss

    @torch.no_grad()
    def post_epoch_dual_param_update(self, retain_losses):
        """``retain_losses``: compute_retain_loss of every batch of a fresh pass over the train dataloader."""
        total_dual_loss = 0
        number_of_batches = 0
        for retain_loss in retain_losses:
            total_dual_loss += retain_loss
            number_of_batches += 1
        retain_loss = total_dual_loss / number_of_batches - self.retain_loss_eps
        self.preferences[1] = max(0, self.preferences[1] + self.dual_step_size * retain_loss.item())

    def on_epoch_end(self, epoch, retain_losses):
        """The callback (``state.epoch`` = epochs done); a no-op without primal_dual (no callback is added)."""
        if not self.primal_dual:
            return
        if epoch >= self.dual_warmup_epochs:
            self.can_update = True
            if self.dual_update_upon == "epoch":
                self.post_epoch_dual_param_update(retain_losses)


class GRUReference:
    """Copied from locuslab/open-unlearning src/trainer/unlearn/gru.py @ 911e52a1cdd75e753e868b568257e5d2796af373
    (PR #83): store_grads ((loss / GA).backward(), accumulate, zero_grad), the step counter (incremented in the
    GradAscent branch only), and at ``steps % GA == 0``: flatten2cpu, the EMA, the dot product per parameter,
    orthogonal_component when it is negative, restore_gradients into ``param.grad``. ``params`` are the leaves;
    their ``.grad`` persists between calls as the model's does (the trainer zeroes it after an optimizer step)."""

    def __init__(self, gamma_gru, gradient_accumulation_steps=1, forget_loss_type="GradAscent"):
        self.gamma_gru, self.gradient_accumulation_steps = gamma_gru, gradient_accumulation_steps
        self.forget_loss_type = forget_loss_type
        self.flattened_retain_prev = 0.0
        self.steps = 0
        self.gradient_accum, self.retain_grad = {}, {}

    def store_grads(self, params, loss, typ):
        loss = loss / self.gradient_accumulation_steps
        loss.backward()
        target_dict = self.gradient_accum if typ == "objective" else self.retain_grad
        for i, param in enumerate(params):
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            if i not in target_dict:
                target_dict[i] = torch.zeros_like(param.grad)
            target_dict[i] += param.grad.detach()
        for param in params:
            param.grad = None

    @staticmethod
    def _dot(a, b, shapes):
        total, index = 0.0, 0
        for shape in shapes:
            size = int(torch.tensor(shape).prod())
            total += (a[index:index + size] * b[index:index + size]).sum().item()
            index += size
        return total

    def training_step(self, params, forget_loss, retain_loss):
        """One micro-batch (compute_loss + the GRU part of training_step); True when it projected and restored."""
        self.store_grads(params, forget_loss, "objective")
        self.store_grads(params, retain_loss, "retain")
        if self.forget_loss_type == "GradAscent":
            self.steps += 1
        if self.steps % self.gradient_accumulation_steps != 0:
            return False
        shapes = [p.shape for p in params]
        flattened_gradient = torch.cat([self.gradient_accum[i].view(-1) for i in range(len(params))])
        flattened_retain_accumulation = torch.cat([self.retain_grad[i].view(-1) for i in range(len(params))])
        self.gradient_accum, self.retain_grad = {}, {}
        flattened_retain = (self.gamma_gru * flattened_retain_accumulation
                            + (1 - self.gamma_gru) * self.flattened_retain_prev)
        self.flattened_retain_prev = flattened_retain
        dotp_retain = self._dot(flattened_gradient, flattened_retain, shapes)
        if dotp_retain < 0:
            g1g1 = self._dot(flattened_retain, flattened_retain, shapes)
            flattened_gradient = flattened_gradient - dotp_retain / g1g1 * flattened_retain
        index = 0
        for param in params:
            size = param.numel()
            param.grad = flattened_gradient[index:index + size].view(param.shape).clone()
            index += size
        return True


class SIBLReference:
    """Copied from locuslab/open-unlearning src/trainer/unlearn/sibl.py @ a291f94023227b23bfeb19aade3b66e31c9bd783
    (pull request #159; SIBL.yaml there: T 20, K 10, epsilon 0.1, ...). ``step``: one outer iteration on a real
    model, in its own order of operations: the
    layerwise-magnitude mask dict, ``inner_step`` K times (the model's own HF loss + L1, ``.backward()``,
    ``param.data.sub_``), ``outer_step`` (L_alm backward, scipy CG on the masked inner Hessian, the L_alm
    Hessian-vector correction, the masked SGD step, the dual update). ``step`` returns (L_fgt, L_ret, the
    masked outer direction per parameter)."""

    def __init__(self, model, epsilon, rho, K, eta_in, eta_theta, gamma, sparsity, use_implicit, cg_iters, cg_tol,
                 apply_update=True):
        self.model, self.epsilon, self.rho, self.K = model, epsilon, rho, K
        self.eta_in, self.eta_theta, self.gamma = eta_in, eta_theta, gamma
        self.use_implicit, self.cg_iters, self.cg_tol = use_implicit, cg_iters, cg_tol
        self.apply_update = apply_update
        self.lambda_dual = 0.0
        self.mask_dict = {}
        for name, param in model.named_parameters():
            if "weight" in name and len(param.shape) >= 2:
                threshold = torch.quantile(param.data.abs().reshape(-1), sparsity)
                self.mask_dict[name] = (param.data.abs() >= threshold).float()
            else:
                self.mask_dict[name] = torch.ones_like(param.data)

    def _hf_loss(self, part):
        return self.model(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                          labels=part["labels"]).loss

    def _reg(self):
        total = 0.0
        for name, param in self.model.named_parameters():
            total = total + (param.abs() * self.mask_dict[name]).sum()
        return self.gamma * total

    def _hvp(self, loss, params, vec):
        grads = torch.autograd.grad(loss, params, create_graph=True, retain_graph=True)
        dot = (torch.cat([g.reshape(-1) for g in grads]) * vec).sum()
        return torch.cat([h.reshape(-1) for h in torch.autograd.grad(dot, params, retain_graph=True)])

    def _cg(self, hvp, b):
        from scipy.sparse.linalg import LinearOperator, cg

        rhs = b.detach().cpu().numpy()
        op = LinearOperator((rhs.size, rhs.size), dtype=rhs.dtype,
                            matvec=lambda x: hvp(torch.from_numpy(x).to(b.dtype)).detach().cpu().numpy())
        x, _ = cg(op, rhs, maxiter=self.cg_iters, atol=self.cg_tol, rtol=0)
        return torch.from_numpy(x).to(b.dtype)

    def step(self, forget, retain):
        model = self.model
        for _ in range(self.K):
            (self._hf_loss(retain) + self._reg()).backward()
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if param.grad is not None:
                        param.data.sub_(self.eta_in * param.grad * self.mask_dict[name])
                    param.grad = None
        logits = model(input_ids=forget["input_ids"], attention_mask=forget["attention_mask"]).logits
        l_fgt = (logits.max(dim=-1)[0] - logits.mean(dim=-1)).mean()
        l_ret = self._hf_loss(retain)
        r = l_ret.item() - self.epsilon
        l_alm = l_fgt + self.lambda_dual * l_ret + 0.5 * self.rho * r ** 2
        l_alm.backward(retain_graph=self.use_implicit)
        g = {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()}
        model.zero_grad()
        if self.use_implicit:
            inner = self._hf_loss(retain) + self._reg()
            params = [p for p in model.parameters() if p.requires_grad]
            grads_inner = torch.autograd.grad(inner, params, create_graph=True, retain_graph=True)
            mask = torch.cat([self.mask_dict[n].reshape(-1) for n, _ in model.named_parameters()])
            v = torch.cat([t.reshape(-1) for t in grads_inner]) * mask
            h = self._cg(lambda x: self._hvp(inner, params, x * mask) * mask, v)
            correction = self._hvp(l_alm, params, h)
            offset = 0
            for name, param in model.named_parameters():
                g[name] = g[name] - correction[offset: offset + param.numel()].reshape(param.shape)
                offset += param.numel()
        direction = {n: g[n] * self.mask_dict[n] for n in g}
        if self.apply_update:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    param.data.sub_(self.eta_theta * g[name] * self.mask_dict[name])
                    param.grad = None
        self.lambda_dual = max(0.0, self.lambda_dual + self.rho * r)
        return l_fgt.detach(), l_ret.detach(), direction

    def train(self, T, train_dataloader):
        """SIBL.train: T outer iterations, each on the first batch of a fresh iterator over the train dataloader
        (``data_iter = iter(train_dataloader); combined_batch = next(data_iter)``), its retain batch repeated K
        times for the inner loop (``retain_loader = [retain_batch] * self.K``), then outer_step. Returns the
        history's (L_forget, L_retain) per iteration."""
        history = []
        for t in range(T):
            data_iter = iter(train_dataloader)
            combined_batch = next(data_iter)
            forget_batch, retain_batch = combined_batch["forget"], combined_batch["retain"]
            l_fgt, l_ret, _ = self.step(forget_batch, retain_batch)
            history.append((float(l_fgt), float(l_ret)))
        return history


def masked_mean_nll(logits, labels):
    """The HF mean NLL written as sum(CE * mask) / count: equal to ``hf_loss`` in exact arithmetic, rounded
    differently in float32 (used to measure how much a solver amplifies last-bit differences)."""
    ce = F.cross_entropy(logits[:, :-1, :].float().transpose(1, 2), labels[:, 1:], ignore_index=IGNORE,
                         reduction="none")
    mask = labels[:, 1:] != IGNORE
    return (ce * mask).sum() / mask.sum()
