"""LMCleaner (batch level, OU PR #170): the GGN Hessian-vector product, the logger, the batch correction.

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import torch

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
