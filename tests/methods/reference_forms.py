"""The reference implementations' loss formulas, transcribed independently of unlearning/ (the oracle of
tests/methods/test_fidelity.py and benchmarks/bench_fidelity.py; nothing under test is imported here).

Each function follows the vectorised code of the repository it names, quirks included (read from
locuslab/open-unlearning ``src/trainer/utils.py`` + ``src/trainer/unlearn/*.py``, nmndeep/JensUn-Unlearning
``src/trainer/utils.py`` and annahuynhly/BalDRO ``src/trainer/utils.py``), but on tensors instead of models:
``logits`` [B, T, V], ``labels`` [B, T] (-100 = unscored), ``hidden`` [B, T, d]. The ``*_project`` functions
are the project's deliberately different forms, written from their docstrings' formulas.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = -100


# --------------------------------------------------------------------------------------------------
# shared pieces (OU trainer/utils.py)


def hf_loss(logits, labels):
    """What an HF causal-LM forward returns as ``outputs.loss``."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab), labels[..., 1:].reshape(-1), ignore_index=IGNORE)


def batch_nll(logits, labels):
    """OU compute_batch_nll: per-sequence summed CE over scored tokens."""
    loss = F.cross_entropy(logits[..., :-1, :].transpose(-1, -2), labels[..., 1:], ignore_index=IGNORE,
                           reduction="none")
    return loss.sum(dim=-1)


def kl_divergence(logits, ref_logits):
    """OU compute_kl_divergence: batchmean KL(ref || model) over all flattened positions."""
    vocab = logits.shape[-1]
    ref = F.log_softmax(ref_logits, dim=-1).view(-1, vocab)
    cur = F.log_softmax(logits, dim=-1).view(-1, vocab)
    return F.kl_div(cur, ref, reduction="batchmean", log_target=True)


def dpo(win_logits, win_ref_logits, win_labels, lose_logits, lose_ref_logits, lose_labels, beta):
    """OU compute_dpo_loss (either side may be None)."""
    win_ratio = lose_ratio = 0.0
    if win_logits is not None:
        win_ratio = -(batch_nll(win_logits, win_labels) - batch_nll(win_ref_logits, win_labels).detach())
    if lose_logits is not None:
        lose_ratio = -(batch_nll(lose_logits, lose_labels) - batch_nll(lose_ref_logits, lose_labels).detach())
    return -2 / beta * F.logsigmoid(beta * (win_ratio - lose_ratio)).mean()


def retain_term(kind, logits, labels, ref_logits=None):
    return hf_loss(logits, labels) if kind == "NLL" else kl_divergence(logits, ref_logits)


def _shifted_token_nll(logits, labels):
    vocab = logits.shape[-1]
    shift = labels[..., 1:]
    nll = F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab), shift.reshape(-1), ignore_index=IGNORE,
                          reduction="none")
    return nll, shift.reshape(-1)


# --------------------------------------------------------------------------------------------------
# forget losses, one per method


def grad_ascent(logits, labels):
    return -hf_loss(logits, labels)


def simnpo(logits, labels, beta, delta):
    """OU simnpo.py (the length is counted on the unshifted labels)."""
    loss = batch_nll(logits, labels) / (labels != IGNORE).sum(-1) - delta
    return -F.logsigmoid(beta * loss).mean() * 2 / beta


def wga(logits, labels, beta):
    """OU compute_wga_loss."""
    lm_loss, shift = _shifted_token_nll(logits, labels)
    weight = ((-lm_loss).exp().detach()) ** beta
    return -(weight * lm_loss)[shift != IGNORE].mean()


def satimp(logits, labels, beta1, beta2):
    """OU compute_satimp_loss."""
    lm_loss, shift = _shifted_token_nll(logits, labels)
    w_sat = ((-lm_loss).exp().detach()) ** beta1
    w_imp = (1 - (-lm_loss).exp().detach()) ** beta2
    return -((w_sat * w_imp) * lm_loss)[shift != IGNORE].mean()


def tnpo(logits, ref_logits, labels, beta, detach):
    """annahuynhly/BalDRO compute_tnpo_loss, mean over sequences (``detach=False`` is the fork's code;
    ``detach=True`` is the project's default form with the weights held constant)."""
    shift = labels[..., 1:]
    valid = shift != IGNORE
    vocab = logits.shape[-1]
    nll = F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab), shift.reshape(-1), ignore_index=IGNORE,
                          reduction="none").view(shift.shape)
    ref_nll = F.cross_entropy(ref_logits[..., :-1, :].reshape(-1, vocab), shift.reshape(-1), ignore_index=IGNORE,
                              reduction="none").view(shift.shape).detach()
    p_beta, ref_beta = torch.exp(-nll) ** beta, torch.exp(-ref_nll) ** beta
    w = (2 * p_beta) / (p_beta + ref_beta)
    if detach:
        w = w.detach()
    return (-(w * nll * valid).sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)).mean()


def undial(logits, ref_logits, labels, beta):
    """OU compute_undial_loss, literally: every position counts; label -100 indexes vocabulary id V-100."""
    shift_labels = labels[..., 1:]
    shift_logits = logits[..., :-1, :]
    teacher = ref_logits[..., :-1, :].detach()
    mask = torch.zeros_like(teacher)
    batch_idx = torch.arange(mask.shape[0]).view(-1, 1, 1)
    seq_idx = torch.arange(mask.shape[1]).view(1, -1, 1)
    mask[batch_idx, seq_idx, shift_labels.unsqueeze(-1)] = 1.0
    soft = F.softmax(teacher - mask * beta, dim=-1)
    loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), soft.reshape(-1, soft.size(-1)),
                           reduction="none")
    return loss.mean()


def undial_project(logits, ref_logits, labels, beta):
    """The project's default UNDIAL: the same soft-label CE, token mean over scored positions only."""
    shift = labels[..., 1:]
    valid = shift != IGNORE
    onehot = F.one_hot(shift.clamp(min=0), logits.shape[-1]).to(logits.dtype) * valid.unsqueeze(-1)
    soft = F.softmax(ref_logits[..., :-1, :].detach() - beta * onehot, dim=-1)
    per = -(soft * F.log_softmax(logits[..., :-1, :], dim=-1)).sum(-1)
    return per[valid].mean()


def activation_loss_ou(a, b, mask):
    """OU RMU compute_activation_loss, literally: [B] sums over [B, 1] counts broadcast to [B, B]."""
    squared = F.mse_loss(a, b, reduction="none")
    sums = (squared * mask.unsqueeze(-1).expand_as(squared)).mean(dim=2).sum(dim=1)
    counts = mask.sum(dim=-1, keepdim=True)
    return (sums / counts).mean()


def activation_loss_project(a, b, mask):
    """The per-sample form: mean_i (sum_t mask * mean_d (a-b)^2) / n_i."""
    per_token = ((a - b) ** 2).mean(-1)
    return ((per_token * mask).sum(-1) / mask.sum(-1)).mean()


def rmu(h_forget, control, forget_labels, h_retain, h_retain_ref, retain_labels, gamma, alpha, faithful):
    act = activation_loss_ou if faithful else activation_loss_project
    forget = act(h_forget, control.expand_as(h_forget), forget_labels != IGNORE)
    retain = act(h_retain, h_retain_ref.detach(), retain_labels != IGNORE)
    return gamma * forget + alpha * retain


def jensun_forget(logits, labels, tokids, eps=1e-9):
    """JensUn jensun_multitok_loss (masked 2026 version), literally (per-row loop, clamp p and q first)."""
    shift_logits, shift_labels = logits[..., :-1, :], labels[..., 1:]
    mask = (shift_labels != IGNORE).float()
    pattern = torch.tensor(tokids, dtype=torch.long)
    peaked = torch.zeros_like(shift_logits)
    for i in range(shift_logits.shape[0]):
        valid = torch.nonzero(mask[i], as_tuple=True)[0]
        if len(valid) == 0:
            continue
        cyclic = pattern.repeat(math.ceil(len(valid) / len(tokids)))[: len(valid)]
        rows = torch.zeros(len(valid), shift_logits.shape[-1], dtype=shift_logits.dtype)
        rows.scatter_(1, cyclic.unsqueeze(1), 1.0)
        peaked[i, valid, :] = rows
    probs = torch.clamp(F.softmax(shift_logits, dim=-1), min=eps)
    peaked = torch.clamp(peaked, min=eps)
    m = 0.5 * (probs + peaked)
    kl_p = torch.sum(probs * (torch.log(probs) - torch.log(m)), dim=-1)
    kl_q = torch.sum(peaked * (torch.log(peaked) - torch.log(m)), dim=-1)
    return ((0.5 * (kl_p + kl_q)) * mask).sum() / (mask.sum() + 1e-8)


def jensun_retain(logits, ref_logits, labels):
    """JensUn jensun_retain_loss: log-softmax log-probs, only log m clamped at 1e-10, masked mean."""
    mask = labels[..., 1:] != IGNORE
    log_p = F.log_softmax(ref_logits[..., :-1, :].detach(), dim=-1)
    log_q = F.log_softmax(logits[..., :-1, :], dim=-1)
    p, q = log_p.exp(), log_q.exp()
    log_m = (0.5 * (p + q)).clamp(min=1e-10).log()
    js = 0.5 * ((p * (log_p - log_m)).sum(-1) + (q * (log_q - log_m)).sum(-1))
    return js[mask].mean()


def _jsd_clamped_mixture(p, q, eps):
    m = (0.5 * (p + q)).clamp(min=eps)
    pc, qc = p.clamp(min=eps), q.clamp(min=eps)
    return 0.5 * (pc * (pc.log() - m.log())).sum(-1) + 0.5 * (qc * (qc.log() - m.log())).sum(-1)


def jensun_forget_project(logits, labels, tokids, eps=1e-9):
    """The project's default eps placement: m = clamp((p+q)/2, eps) from the unclamped p and q."""
    mask = labels[..., 1:] != IGNORE
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0) % len(tokids)
    q = F.one_hot(torch.tensor(tokids)[pos], logits.shape[-1]).to(logits.dtype)
    return _jsd_clamped_mixture(F.softmax(logits[..., :-1, :], dim=-1), q, eps)[mask].mean()


def jensun_retain_project(logits, ref_logits, labels, eps=1e-9):
    mask = labels[..., 1:] != IGNORE
    p = F.softmax(ref_logits[..., :-1, :].detach(), dim=-1)
    q = F.softmax(logits[..., :-1, :], dim=-1)
    return _jsd_clamped_mixture(p, q, eps)[mask].mean()


def ceu(logits, labels, ignore_first_n=1):
    """OU compute_batch_ceu + cross_entropy_unlearning_loss, literally."""
    valid = labels != IGNORE
    update = (valid.cumsum(dim=-1) <= ignore_first_n) & valid
    shifted_labels = labels.masked_fill(update, IGNORE)[..., 1:]
    shifted_logits = logits[..., :-1, :]
    keep = shifted_labels != IGNORE
    v_logits, v_labels = shifted_logits[keep], shifted_labels[keep]
    target = v_logits.detach().clone()
    target.scatter_(dim=-1, index=v_labels.unsqueeze(-1), value=float("-inf"))
    return F.cross_entropy(input=v_logits, target=F.softmax(target, dim=-1))


def pdu_forget(logits, labels):
    """Copied from locuslab/open-unlearning src/trainer/unlearn/pdu.py @ d3d7cf9e6b3c125d16687d4232680d8d83548f1a
    (PDU.compute_loss, masked since 0e57336 "masked loss PDU (#147)"): squared (max - mean) logit margin per
    flattened position, averaged over the positions whose *unshifted* label is not -100."""
    logits = logits.reshape(-1, logits.size(-1))
    maxLogits = logits.max(dim=-1)[0]
    averageLogits = logits.mean(dim=-1)
    forget_loss = (maxLogits - averageLogits) ** 2
    mask = (labels != -100).reshape(-1)
    return (forget_loss * mask).sum() / mask.sum()


def pdu_forget_unmasked(logits):
    """The form before #147: locuslab/open-unlearning src/trainer/unlearn/pdu.py @
    fd825ea73b25ff6835f0675234cfe55b81117edb (mean over all B*T positions, prompt and padding included)."""
    flat = logits.reshape(-1, logits.size(-1))
    return ((flat.max(dim=-1)[0] - flat.mean(dim=-1)) ** 2).mean()


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


# --------------------------------------------------------------------------------------------------
# T3 (OU src/model/t3.py T3CausalLM + src/trainer/unlearn/t3.py), written on a base model and the head's proj


def t3_mean_pool(hidden, attention_mask):
    """``_mean_pool``: masked cumulative sum over the cumulative token count (clamped at 1)."""
    mask = attention_mask.to(dtype=hidden.dtype).unsqueeze(-1)
    return (hidden * mask).cumsum(dim=1) / mask.cumsum(dim=1).clamp_min(1)


def t3_classifier_logits(base, proj, part):
    """``forward(classifier_only=True)``: the decoder's last hidden state without gradients, mean-pooled,
    [:, :-1], and the target token's logit through ``target_token_logits``."""
    with torch.no_grad():
        hidden = base.get_decoder()(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                                    use_cache=False, return_dict=True).last_hidden_state
    pooled = t3_mean_pool(hidden, part["attention_mask"])
    shifted = part["labels"][:, 1:].contiguous()
    safe = shifted.masked_fill(shifted == IGNORE, 0)
    b, t, h = pooled[:, :-1, :].shape
    x = pooled[:, :-1, :].contiguous().reshape(-1, h)
    for layer in proj[:-1]:
        x = layer(x)
    selected = proj[-1].weight.index_select(0, safe.reshape(-1))
    return (x * selected).sum(dim=-1).view(b, t)


def t3_loss(base, proj, parts):
    """T3.compute_loss: BCE sums of retain (label 1) and forget (label 0) scored positions over their count."""
    loss_sum, total_valid = torch.tensor(0.0), torch.tensor(0.0)
    for split in ("retain", "forget"):
        logits = t3_classifier_logits(base, proj, parts[split]).flatten()
        shifted = parts[split]["labels"][:, 1:].contiguous()
        labels = torch.full_like(shifted, int(split == "retain"))
        labels[shifted == IGNORE] = IGNORE
        labels = labels.flatten()
        valid = labels != IGNORE
        if valid.any():
            loss_sum = loss_sum + F.binary_cross_entropy_with_logits(logits[valid], labels[valid].to(logits.dtype),
                                                                     reduction="sum")
            total_valid = total_valid + valid.sum()
    return loss_sum / total_valid.clamp_min(1)


def t3_guided_logits(base, proj, input_ids, attention_mask, guidance_scale, base_temp):
    """The non-classifier forward: base logits and hidden_states[-1], pooled, the full head, ``_guide_logits``."""
    out = base(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    pooled = t3_mean_pool(out.hidden_states[-1], attention_mask)
    b, t, h = pooled.shape
    classifier = proj(pooled.view(-1, h)).view(b, t, -1)
    return F.log_softmax(out.logits, dim=2) / base_temp + guidance_scale * F.logsigmoid(classifier)


# --------------------------------------------------------------------------------------------------
# LUNAR (OU src/trainer/unlearn/lunar.py), on a model whose blocks are ``model.model.layers``


def lunar_candidate_directions(model, harmful, harmless):
    """``get_mean_diff`` with positions [-1]: per block, the mean input activation at the last position over the
    harmful prompts minus that over the harmless (forget) prompts, accumulated as ``cache += (1/n) * sum``.
    Prompts are token-id lists fed one per batch (no padding)."""
    blocks = model.model.layers

    def means(prompts):
        cache = torch.zeros(len(blocks), model.config.hidden_size)
        handles = []
        for layer in range(len(blocks)):
            def hook(module, args, kwargs, layer=layer):
                act = (args[0] if args else kwargs["hidden_states"]).clone()
                cache[layer] += (1.0 / len(prompts)) * act[:, act.shape[1] - 1, :].sum(dim=0)
            handles.append(blocks[layer].register_forward_pre_hook(hook, with_kwargs=True))
        try:
            with torch.no_grad():
                for p in prompts:
                    ids = torch.tensor([p])
                    model(input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            for h in handles:
                h.remove()
        return cache

    return means(harmful) - means(harmless)


def lunar_direction(candidates, layer):
    """``compute_direction``: candidates[layer + 1], the last block when that is out of range."""
    index = layer + 1 if layer + 1 < candidates.shape[0] else candidates.shape[0] - 1
    return candidates[index]


def lunar_trainset(model, rows, layer, direction, coeff, forget):
    """``get_activations`` (one row per forward, its attended tokens only) + ``perturb_post_block_activations_
    forget`` + ``prepare_trainset_raw``: (inputs = down_proj inputs, targets = post-block (+ coeff*direction on
    forget) - post_attention_layernorm input), rows concatenated."""
    block = model.model.layers[layer]
    xs, ys = [], []
    for ids, mask in zip(rows["input_ids"], rows["attention_mask"]):
        ids = ids[mask.bool()].unsqueeze(0)
        cache = {}
        handles = [block.register_forward_hook(lambda m, a, out: cache.__setitem__("post", (out[0] if isinstance(out, tuple) else out).clone().detach())),
                   block.post_attention_layernorm.register_forward_pre_hook(lambda m, a: cache.__setitem__("pre_ln", a[0].clone().detach())),
                   block.mlp.down_proj.register_forward_pre_hook(lambda m, a: cache.__setitem__("x", a[0].clone().detach()))]
        try:
            with torch.no_grad():
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            for h in handles:
                h.remove()
        post = cache["post"]
        if forget:
            post += coeff * direction
        xs.append(cache["x"].squeeze(0))
        ys.append((post - cache["pre_ln"]).squeeze(0))
    return torch.cat(xs), torch.cat(ys)


def lunar_loss(model, estimated_weights, parts, layers, coeffs, directions):
    """``train_multiple_layers`` on one batch holding the forget rows' then the retain rows' token vectors: the sum
    over layers of ``MSELoss`` of the estimated down_proj (``EstimatedNet``: a bias-free Linear) on them."""
    total = 0.0
    for layer, weight, coeff, direction in zip(layers, estimated_weights, coeffs, directions):
        xf, yf = lunar_trainset(model, parts["forget"], layer, direction, coeff, forget=True)
        xr, yr = lunar_trainset(model, parts["retain"], layer, direction, coeff, forget=False)
        inputs, targets = torch.cat([xf, xr]), torch.cat([yf, yr])
        total = total + torch.nn.MSELoss()(F.linear(inputs, weight), targets)
    return total


class EstimatedNet(torch.nn.Module):
    """Copied from locuslab/open-unlearning src/trainer/unlearn/lunar.py @ a2550b5cc47fe420805cc3e6c396e78bc9862e3e
    (pull request #171): a bias-free Linear built with its default init, then set to the original weight."""

    def __init__(self, in_features, out_features, bias, original_down_proj_weight):
        super().__init__()
        self.down_proj = torch.nn.Linear(in_features=in_features, out_features=out_features, bias=bias)
        with torch.no_grad():
            self.down_proj.weight.copy_(original_down_proj_weight)

    def forward(self, x):
        return self.down_proj(x)


class ActivationDatasetMultipleLayers(torch.utils.data.Dataset):
    """lunar.py ActivationDataset_multiple_layers @ a2550b5."""

    def __init__(self, inputs_list, targets_list):
        self.inputs_list, self.targets_list = inputs_list, targets_list

    def __len__(self):
        return self.inputs_list[0].size(0)

    def __getitem__(self, idx):
        return [inputs[idx] for inputs in self.inputs_list], [targets[idx] for targets in self.targets_list]


def lunar_reference_fit(model, forget_rows, retain_rows, layers, coeffs, directions, lr, num_epochs, batch_size):
    """lunar.py @ a2550b5 Lunar.train after the direction: prepare_trainset (per layer, ``lunar_trainset`` above for
    the forget rows, shifted, and the retain rows), prepare_estimated_net_list (dtype kept: float32 here, the
    reference casts to bfloat16), ConcatDataset([forget, remain]) in a DataLoader(batch_size, shuffle=True),
    AdamW(lr), ExponentialLR(gamma=0.9), train_multiple_layers (sum over layers of MSELoss per batch, scheduler per
    epoch). Returns (the fitted weights, each epoch's mean loss)."""
    forget_in, forget_tg, remain_in, remain_tg = [], [], [], []
    for layer, coeff, direction in zip(layers, coeffs, directions):
        xf, yf = lunar_trainset(model, forget_rows, layer, direction, coeff, forget=True)
        xr, yr = lunar_trainset(model, retain_rows, layer, direction, coeff, forget=False)
        forget_in.append(xf), forget_tg.append(yf), remain_in.append(xr), remain_tg.append(yr)
    nets = []
    for layer in layers:
        weight = model.model.layers[layer].mlp.down_proj.weight.clone()
        nets.append(EstimatedNet(weight.shape[1], weight.shape[0], False, weight))
    combined = torch.utils.data.ConcatDataset([ActivationDatasetMultipleLayers(forget_in, forget_tg),
                                               ActivationDatasetMultipleLayers(remain_in, remain_tg)])
    train_loader = torch.utils.data.DataLoader(combined, batch_size=batch_size, shuffle=True)
    params = [p for net in nets for p in net.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    criterion = torch.nn.MSELoss()
    epoch_losses = []
    for _ in range(num_epochs):
        running_loss = 0.0
        for inputs_list, targets_list in train_loader:
            optimizer.zero_grad()
            outputs_list = [net(inputs) for net, inputs in zip(nets, inputs_list)]
            loss = sum([criterion(outputs, target) for outputs, target in zip(outputs_list, targets_list)])
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        scheduler.step()
        epoch_losses.append(running_loss / len(train_loader))
    return [net.down_proj.weight.detach() for net in nets], epoch_losses


# --------------------------------------------------------------------------------------------------
# LMCleaner (batch level), locuslab/open-unlearning PR #170 @ c104723497ba92137f5fdd87b7d595311d358290 (see below)


def lmcleaner_hvp_ggn(model, batch_data, v):
    """lmcleaner_core.hvp_ggn: the model's HF loss on the batch, grads with create_graph, g.v, its gradient."""
    params = [p for p in model.parameters() if p.requires_grad]
    v_list, offset = [], 0
    for p in params:
        v_list.append(v[offset: offset + p.numel()].view_as(p))
        offset += p.numel()
    model.zero_grad()
    loss = model(**batch_data).loss
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gv = sum((g * v_part).sum() for g, v_part in zip(grads, v_list))
    hvp = torch.autograd.grad(gv, params)
    return torch.cat([t.view(-1) for t in hvp])


class ReferenceTrainingLogger:
    """trainer/base.py training_step + training_logger.py register_step @ c104723: at every training_step (after its
    forward/backward, before the optimizer step), step_id = global_step, eta = the optimizer's lr, sample_indices =
    the batch's index, u = the parameters now minus those cloned at the previous call (the first call clones first,
    so u = 0), current_step = step_id."""

    def __init__(self):
        self.prev_params, self.sample_indices, self.etas, self.us, self.current_step = None, {}, {}, {}, 0

    def training_step(self, model, global_step, lr, indices):
        if self.prev_params is None:
            self.prev_params = [p.clone().detach().cpu() for p in model.parameters() if p.requires_grad]
        current = [p.clone().detach().cpu() for p in model.parameters() if p.requires_grad]
        self.us[global_step] = torch.cat([(new - old).view(-1) for new, old in zip(current, self.prev_params)])
        self.sample_indices[global_step], self.etas[global_step] = list(indices), lr
        self.current_step = global_step
        self.prev_params = current


def lmcleaner_batch_reference(model, sample_indices, etas, us, current_step, forget_batch_ids, batch_for_step, K,
                              damping, max_step=None):
    """Copied from locuslab/open-unlearning src/trainer/unlearn/lmcleaner_batch.py @
    c104723497ba92137f5fdd87b7d595311d358290 (pull request #170), LMCleanerBatchLevel._get_forget_steps (steps whose
    sample_indices hold a forget id) and _apply_unlearning (hessian_mode GGN): tau = max_step or current_step; per
    forget step tz <= tau ascending: v = -u[tz]; s over tz+1 .. min(tz + K, tau - 1): v -= eta_s * hvp_ggn(model,
    batch_s, v), then v -= eta_s * damping * v; apply_correction (theta += v). Returns the audit records."""
    forget_set, forget_steps = set(forget_batch_ids), []
    for step_id, sample_list in sample_indices.items():
        for sample_idx in sample_list:
            if sample_idx in forget_set:
                forget_steps.append(int(step_id))
                break
    forget_steps = sorted(set(forget_steps))
    tau = max_step if max_step is not None else current_step
    forget_steps = [s for s in forget_steps if s <= tau]
    params = [p for p in model.parameters() if p.requires_grad]
    audit = []
    for tz in forget_steps:
        u_tz = us.get(tz)
        if u_tz is None:
            continue
        v = -u_tz.clone()
        end_step = min(tz + K, tau - 1)
        hvp_calls = 0
        for s in range(tz + 1, end_step + 1):
            eta_s = etas.get(s)
            if eta_s is None:
                continue
            with torch.enable_grad():
                hvp = lmcleaner_hvp_ggn(model, batch_for_step(s), v)
            v = v - eta_s * hvp
            if damping > 0:
                v = v - eta_s * damping * v
            hvp_calls += 1
        with torch.no_grad():
            offset = 0
            for p in params:
                n = p.numel()
                p.add_(v[offset: offset + n].view_as(p))
                offset += n
        audit.append({"tz": tz, "tau": tau, "K_used": hvp_calls, "v_norm": float(v.norm())})
    return audit
