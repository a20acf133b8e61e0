"""RMU (open-unlearning `src/trainer/unlearn/rmu.py` @ d3d7cf9e): steering loss on a decoder layer, EMBED_DIFF
retain, layer checks, seeded control, and the
faithful_broadcast option (open-unlearning's mean(s) * mean(1/n))."""

from __future__ import annotations

import pytest
import torch

from methods_oracle import close
from unlearning.errors import ConfigError
from unlearning.methods import build_method, method_defaults


def _act_loss(h, target, labels):
    """Per sample: sum over answer tokens of mean_d (h - target)^2, over the count; then batch mean."""
    per = []
    for b in range(h.shape[0]):
        toks = [t for t in range(h.shape[1]) if int(labels[b, t]) != -100]
        per.append(sum(float(((h[b, t].double() - target[b, t].double()) ** 2).mean()) for t in toks) / len(toks))
    return sum(per) / len(per)


def _hidden(model, part, layer):
    with torch.no_grad():
        out = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], output_hidden_states=True)
    return out.hidden_states[layer + 1]  # entry i+1 is the output of decoder block i (block 0 here)


def _control(h, steering_coeff, seed):
    """RMU's control vector, written out: a seeded uniform vector scaled to norm `steering_coeff`, per token."""
    u = torch.rand(h.shape[-1], generator=torch.Generator().manual_seed(seed))
    return (steering_coeff * u / torch.sqrt((u * u).sum())).expand_as(h)


def test_rmu_forget_and_retain(model, ref_model, batch):
    s, seed = 3.0, 11
    method = build_method("RMU", layer=0, steering_coeff=s, seed=seed, gamma=0.5, alpha=2.0)
    out = method.loss(model, batch, ref_model=ref_model)
    h_f = _hidden(model, batch["forget"], 0)
    c = _control(h_f, s, seed)
    forget = _act_loss(h_f, c, batch["forget"]["labels"])
    retain = _act_loss(_hidden(model, batch["retain"], 0), _hidden(ref_model, batch["retain"], 0),
                       batch["retain"]["labels"])
    assert retain > 1e-6
    assert close(out.forget_loss, forget) and close(out.retain_loss, retain)
    assert close(out.loss, 0.5 * forget + 2.0 * retain)
    out.loss.backward()
    assert model.model.layers[0].mlp.down_proj.weight.grad is not None
    assert method.needs_ref_model


def test_rmu_control_vector_is_seeded_and_negative_layer_works(model, batch):
    a = build_method("RMU", layer=-2, seed=5).loss(model, batch, ref_model=model)  # -2 == block 0
    b = build_method("RMU", layer=0, seed=5).loss(model, batch, ref_model=model)
    c = build_method("RMU", layer=0, seed=6).loss(model, batch, ref_model=model)
    assert close(a.forget_loss, b.forget_loss) and not close(b.forget_loss, c.forget_loss)


def test_rmu_layer_out_of_range(model, batch):
    with pytest.raises(ConfigError, match="2 decoder layers"):
        build_method("RMU").loss(model, batch, ref_model=model)  # default layer 7
    with pytest.warns(UserWarning, match="using layer 1"):
        clamped = build_method("RMU", clamp_layer=True, alpha=0.0).loss(model, batch)
    assert close(clamped.forget_loss, build_method("RMU", layer=1, alpha=0.0).loss(model, batch).forget_loss)


def test_rmu_trainable_parameters_regex(model):
    method = build_method("RMU", trainable_params_regex=r"model\.layers\.(0|1)\.mlp\.down_proj\.weight")
    assert [n for n, _ in method.trainable_parameters(model)] == [
        "model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"]
    with pytest.raises(ConfigError, match="trainable_params_regex"):
        build_method("RMU", trainable_params_regex="(")


def test_rmu_faithful_broadcast_matches_open_unlearning_quirk(model, ref_model, batch):
    """faithful_broadcast=True: OU's [B] / [B, 1] broadcast, i.e. mean(s) * mean(1/n), on forget and retain."""
    s, seed = 3.0, 11
    out = build_method("RMU", layer=0, steering_coeff=s, seed=seed, faithful_broadcast=True).loss(
        model, batch, ref_model=ref_model)
    default = build_method("RMU", layer=0, steering_coeff=s, seed=seed).loss(model, batch, ref_model=ref_model)

    def broadcast(h, target, labels):
        sums, inv = [], []
        for b in range(h.shape[0]):
            toks = [t for t in range(h.shape[1]) if int(labels[b, t]) != -100]
            sums.append(sum(float(((h[b, t].double() - target[b, t].double()) ** 2).mean()) for t in toks))
            inv.append(1 / len(toks))
        return sum(sums) / len(sums) * sum(inv) / len(inv)

    h_f = _hidden(model, batch["forget"], 0)
    c = _control(h_f, s, seed)
    forget = broadcast(h_f, c, batch["forget"]["labels"])
    retain = broadcast(_hidden(model, batch["retain"], 0), _hidden(ref_model, batch["retain"], 0),
                       batch["retain"]["labels"])
    assert close(out.forget_loss, forget) and close(out.retain_loss, retain) and close(out.loss, forget + retain)
    assert not close(out.forget_loss, default.forget_loss, tol=1e-2)  # answer lengths 5, 7, 2, 4 differ
    assert method_defaults("RMU")["faithful_broadcast"] is False
