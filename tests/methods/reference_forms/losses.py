"""The forget losses, one per method, on tensors (logits [B, T, V], labels [B, T]).

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .shared import IGNORE, _shifted_token_nll, batch_nll, hf_loss

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
