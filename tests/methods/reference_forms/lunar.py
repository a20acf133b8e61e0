"""LUNAR (OU src/trainer/unlearn/lunar.py): refusal directions, the activation train set, the fit.

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
