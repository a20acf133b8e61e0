"""LUNAR's reference fit (open-unlearning ``src/trainer/unlearn/lunar.py`` @ a2550b5, pull request #171): the
token-vector regression data of the whole forget and retain sets, and the separate fit of each chosen
``down_proj`` on it, used by :class:`unlearning.methods.lunar.LUNAR` when ``fit: reference`` (the default).

    xs, ys = regression_data(model, forget_rows, retain_rows, layers, directions, coeffs)
    weights, losses = fit_down_proj([w0, ...], xs, ys, lr=1e-3, epochs=100, batch_size=64)

* Data (``prepare_trainset`` + ``prepare_trainset_raw``): every row is run alone (batch 1, no padding) through the
  unchanged model; per layer, each token gives x = the input of ``mlp.down_proj`` and y = the block's output minus
  the input of ``post_attention_layernorm`` (the MLP's output), with ``coeff * direction`` added to the block output
  on forget rows (every token, as ``perturb_post_block_activations_forget``). Forget vectors first, then retain
  vectors (the reference's ``ConcatDataset([forget, remain])``).
* Fit (``prepare_estimated_net_list`` + ``train_multiple_layers``): per layer an ``EstimatedNet`` (a bias-free
  ``nn.Linear``, built, so drawing its default initialisation from torch's global RNG as the reference does, then
  set to the original weight); ``DataLoader(batch_size, shuffle=True)`` over the vectors (a fresh order per epoch
  from torch's global RNG); ``AdamW(lr)`` with torch's defaults (weight decay 0.01) over all layers' weights;
  per batch the sum over layers of ``MSELoss`` (mean); ``ExponentialLR(gamma=0.9)`` stepped once per epoch.
  The fitted weights are then copied into the model.

Difference kept: the reference casts the estimated nets to bfloat16 whatever the model's dtype (it only runs with a
bfloat16 model); here they keep the model's dtype (float32 on CPU, bfloat16 on GPU as the reference). The reference
also turns each row back into text (``tokenizer.decode`` of its input_ids) and re-tokenises it, which adds a second
BOS with Llama tokenizers; here the row's own token ids are used.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearning.methods.rmu import decoder_layers

EXPONENTIAL_GAMMA = 0.9    # the reference's ExponentialLR(optimizer, gamma=0.9)


def mlp_activations(model: nn.Module, inputs: Mapping[str, Tensor], layers: Sequence[int]) -> list[tuple[Tensor, ...]]:
    """Per layer (down_proj input, block output, post_attention_layernorm input) at the attended tokens [N, .]."""
    blocks = decoder_layers(model)
    store: dict[tuple[int, str], Tensor] = {}
    handles = []
    for i, l in enumerate(layers):
        block = blocks[l]
        handles.append(block.mlp.down_proj.register_forward_pre_hook(
            lambda _m, args, i=i: store.__setitem__((i, "x"), args[0])))
        handles.append(block.post_attention_layernorm.register_forward_pre_hook(
            lambda _m, args, i=i: store.__setitem__((i, "mid"), args[0])))
        handles.append(block.register_forward_hook(
            lambda _m, _a, out, i=i: store.__setitem__((i, "out"), out[0] if isinstance(out, (tuple, list)) else out)))
    try:
        with torch.no_grad():
            model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    finally:
        for h in handles:
            h.remove()
    keep = inputs["attention_mask"].bool()
    return [(store[(i, "x")][keep], store[(i, "out")][keep], store[(i, "mid")][keep]) for i in range(len(layers))]


def _row_activations(model: nn.Module, ids: Sequence[int],
                     layers: Sequence[int]) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per layer (down_proj input, block output, post_attention_layernorm input) of one row, [L, .] each."""
    tokens = torch.tensor([list(ids)], device=next(model.parameters()).device)
    return mlp_activations(model, {"input_ids": tokens, "attention_mask": torch.ones_like(tokens)}, layers)


def regression_data(model: nn.Module, forget: Sequence[Mapping[str, Sequence[int]]],
                    retain: Sequence[Mapping[str, Sequence[int]]], layers: Sequence[int], directions: Tensor,
                    coeffs: Sequence[float]) -> tuple[list[Tensor], list[Tensor]]:
    """Per layer, inputs [N, d_ff] and targets [N, d] over every token of the forget rows, then the retain rows."""
    xs: list[list[Tensor]] = [[] for _ in layers]
    ys: list[list[Tensor]] = [[] for _ in layers]
    was_training = model.training
    model.eval()
    for rows, shifted in ((forget, True), (retain, False)):
        for row in rows:
            for i, (x, out, mid) in enumerate(_row_activations(model, row["input_ids"], layers)):
                if shifted:
                    out = out + coeffs[i] * directions[i].to(device=out.device, dtype=out.dtype)
                xs[i].append(x)
                ys[i].append(out - mid)
    model.train(was_training)
    return [torch.cat(x) for x in xs], [torch.cat(y) for y in ys]


def fit_down_proj(weights: Sequence[Tensor], xs: Sequence[Tensor], ys: Sequence[Tensor], lr: float, epochs: int,
                  batch_size: int) -> tuple[list[Tensor], list[float]]:
    """The reference's estimated-net fit (module docstring): returns the fitted weights and each epoch's mean loss."""
    nets = []
    for w in weights:
        net = nn.Linear(w.shape[1], w.shape[0], bias=False).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            net.weight.copy_(w)
        nets.append(net)
    loader = DataLoader(range(xs[0].shape[0]), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.AdamW([p for net in nets for p in net.parameters()], lr=lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=EXPONENTIAL_GAMMA)
    criterion = nn.MSELoss()
    losses = []
    with torch.enable_grad():
        for _ in range(epochs):
            running = 0.0
            for idx in loader:
                optimizer.zero_grad()
                loss = sum(criterion(net(x[idx]), y[idx]) for net, x, y in zip(nets, xs, ys))
                loss.backward()
                optimizer.step()
                running += loss.item()
            scheduler.step()
            losses.append(running / len(loader))
    return [net.weight.detach() for net in nets], losses
