"""LUNAR beyond its fidelity case: only the chosen down_proj trains, training moves forget tokens' MLP output
along the refusal direction while retain tokens keep theirs, and bad settings are one-line errors.

Run: pytest tests/methods/test_lunar.py -q
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from fidelity_cases import _IdsTokenizer
from methods_oracle import make_batch, make_llama
from unlearning.errors import ConfigError, DataError
from unlearning.methods import build_method
from unlearning.methods.lunar import forget_prompt_ids, mlp_activations


def _rows(part):
    return [{"input_ids": i[m.bool()].tolist(), "labels": lab[m.bool()].tolist()}
            for i, m, lab in zip(part["input_ids"], part["attention_mask"], part["labels"])]


def test_training_redirects_forget_activations_and_keeps_retain(tmp_path) -> None:
    batch = make_batch(seed=0)
    model = make_llama(0)
    ref = copy.deepcopy(model).requires_grad_(False)
    prompts = tmp_path / "refusals.txt"
    prompts.write_text("5 9 11 3\n7 7 2\n30 31 32 33 34\n")
    method = build_method("LUNAR", layers=[0], coeffs=4.0, direction_prompts=str(prompts), fit="loop")
    method.prepare_model(model, SimpleNamespace(forget=_rows(batch["forget"])), _IdsTokenizer())
    names = [n for n, _ in method.trainable_parameters(model)]
    assert names == ["model.layers.0.mlp.down_proj.weight"]
    weight = dict(model.named_parameters())[names[0]]
    opt = torch.optim.Adam([weight], lr=3e-2)
    first = None
    for _ in range(200):
        opt.zero_grad()
        out = method.loss(model, batch, ref_model=ref)
        out.loss.backward()
        opt.step()
        first = first if first is not None else float(out.loss.detach())
    assert float(out.loss.detach()) < 0.5 * first   # a tiny model cannot separate the tokens exactly
    shift = 4.0 * method.directions[0]
    (xf, of, mf), (xr, orr, mr) = [mlp_activations(ref, batch[p], [0])[0] for p in ("forget", "retain")]
    with torch.no_grad():
        moved_f = xf @ weight.T - (of - mf)      # new MLP output minus the original, forget tokens
        moved_r = xr @ weight.T - (orr - mr)     # the same on retain tokens
    along = (moved_f @ shift / shift.norm() ** 2).mean()
    assert 0.3 < float(along) < 1.5                     # forget tokens moved along coeff * direction
    assert float(moved_r.norm(dim=-1).mean()) < 0.75 * float(along) * float(shift.norm())   # retain moved less


def test_bad_settings_and_missing_inputs_are_one_line_errors(tmp_path) -> None:
    for bad in ({"layers": []}, {"layers": [1, 1]}, {"coeffs": [1.0, 2.0, 3.0]}, {"coeffs": [float("nan")]},
                {"direction_prompts": ""}, {"clamp_layer": "yes"}, {"fit": "adam"}, {"fit_epochs": 0},
                {"fit_lr": -1.0}, {"fit_batch_size": 2.5}):
        with pytest.raises(ConfigError) as err:
            build_method("LUNAR", **bad)
        assert "\n" not in str(err.value) and next(iter(bad)) in str(err.value)
    model, batch = make_llama(0), make_batch(seed=0)
    data = SimpleNamespace(forget=_rows(batch["forget"]))
    with pytest.raises(ConfigError, match="2 decoder layers"):
        build_method("LUNAR").prepare_model(model, data, _IdsTokenizer())          # the reference's layer 7
    with pytest.warns(UserWarning, match="outside"):
        assert build_method("LUNAR", clamp_layer=True).resolve_layers(model) == [1]
    with pytest.raises(DataError, match="direction_prompts"):
        build_method("LUNAR", layers=[0], direction_prompts=str(tmp_path / "missing.json")).prepare_model(
            model, data, _IdsTokenizer())
    with pytest.raises(ConfigError, match="prepare_model"):
        build_method("LUNAR", layers=[0]).loss(model, batch, ref_model=model)
    assert forget_prompt_ids([{"input_ids": [4, 5, 6, 7], "labels": [-100, -100, 6, 7]}]) == [[4, 5]]
    assert build_method("Lunar", layer_idx_list=[0], coeff_list=[1.0]).config.layers == [0]   # reference spellings
    ref = build_method("LUNAR", lr=2e-3, num_epochs=5, batch_size=32, data_path=str(tmp_path)).config
    assert (ref.fit_lr, ref.fit_epochs, ref.fit_batch_size, ref.direction_prompts) == (2e-3, 5, 32, str(tmp_path))


def test_reference_fit_is_the_default_and_reads_the_reference_data_path(tmp_path) -> None:
    """Lunar.yaml's fit (AdamW 1e-3, 100 epochs, batch 64) is the default; a folder given as direction_prompts is the
    reference's data_path (its splits/harmful.json, a JSON list of instructions or objects with "instruction")."""
    import json

    cfg = build_method("LUNAR").config
    assert (cfg.fit, cfg.fit_lr, cfg.fit_epochs, cfg.fit_batch_size) == ("reference", 1e-3, 100, 64)
    assert not build_method("LUNAR").needs_ref_model and build_method("LUNAR", fit="loop").needs_ref_model
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "harmful.json").write_text(json.dumps([{"instruction": "5 9 11"}, {"instruction": "7 2"}]))
    from unlearning.methods.lunar import load_prompts
    assert load_prompts(str(tmp_path)) == ["5 9 11", "7 2"]
    model, batch = make_llama(0), make_batch(seed=0)
    method = build_method("LUNAR", layers=[0], direction_prompts=str(tmp_path), fit_epochs=2, fit_batch_size=16)
    data = SimpleNamespace(forget=_rows(batch["forget"]), retain=_rows(batch["retain"]))
    method.prepare_model(model, data, _IdsTokenizer())
    before = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    out = method.loss(model, batch)
    after = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    assert not torch.equal(before, after) and len(method.fit_losses) == 2 and method.fitted
    method.loss(model, batch)                                              # fitted once: a later step is a no-op
    assert torch.equal(after, model.model.layers[0].mlp.down_proj.weight) and method.state_dict() == {"fitted": True}
    assert float(out.loss.detach()) == pytest.approx(method.fit_losses[-1])
