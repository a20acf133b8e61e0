"""The procedure methods do what their fidelity cases assume: SIBL's T outer iterations are T fresh batches
(each the first batch_size rows of a new random order, reproducible, repeating rows across iterations) and the
loop runs exactly T of them per epoch; LUNAR's reference fit and LMCleaner's log (below) likewise."""

from __future__ import annotations

import pytest
import torch

import fidelity_cases  # noqa: F401  (first: it imports fidelity_procedures at its end)
from fidelity_procedures import loop_config, token_data
from methods_oracle import make_llama
from unlearning.errors import ConfigError
from unlearning.methods import build_method
from unlearning.train.loop import unlearn


def test_sibl_t_outer_iterations_are_fresh_first_batches():
    data = token_data(0, n_forget=6)
    sibl = build_method("SIBL")                                    # the reference default: T = 20
    plan = sibl.micro_batches(data, 0, 0, 1, 2)
    assert len(plan) == 20 and all(len(b) == 2 and len(set(b)) == 2 for b in plan)
    assert plan == sibl.micro_batches(data, 0, 0, 1, 2)             # reproducible
    assert plan != sibl.micro_batches(data, 1, 0, 1, 2)             # a new draw per epoch
    seen = [i for b in plan for i in b]
    assert len(set(seen)) == 6 and len(seen) > 6                     # every row, some more than once
    assert build_method("SIBL", T=None).micro_batches(data, 0, 0, 1, 2) is None
    with pytest.raises(ConfigError, match="world"):
        sibl.micro_batches(data, 0, 0, 2, 2)


def test_sibl_loop_runs_t_steps_per_epoch():
    data = token_data(0)
    hp = dict(T=3, K=1, cg_iters=2, use_implicit=False, eta_theta=1e-3)
    history = unlearn(make_llama(1, vocab=128), build_method("SIBL", **hp), data, loop_config(epochs=2))
    assert history.steps_per_epoch == 3 and len(history.steps) == 6
    with pytest.raises(ConfigError, match="outer_steps"):
        build_method("SIBL", T=1.5)
    assert torch.isfinite(torch.tensor(history.losses())).all()


def test_lmcleaner_alignments_differ_and_bad_logs_are_one_line_errors(tmp_path):
    """The two log alignments give different corrections (the fidelity cases can tell them apart); a missing log, a
    log without the forget rows and a bad window are one-line errors naming the field, before any compute."""
    import copy

    from fidelity_procedures import token_rows, train_with_logs
    from unlearning.train.data import ForgetRetainDataset

    rows = token_rows(3, 8)
    model, rec, _ = train_with_logs(0, rows)
    folder = rec.write(tmp_path / "log")
    data = ForgetRetainDataset(rows[:2], rows[2:], pad_token_id=0, seed=0)
    after = []
    for alignment in ("update", "reference"):
        m = copy.deepcopy(model)
        method = build_method("LMCleaner", training_log=str(folder), K=3, log_alignment=alignment)
        method.prepare_model(m, data, None)
        unlearn(m, method, data, loop_config(epochs=1))
        after.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
        assert method.forget_steps and method.audit
    assert float((after[0] - after[1]).abs().max()) > 1e-4
    with pytest.raises(ConfigError) as err:                         # required: refused before any compute
        build_method("LMCleaner").prepare_model(model, data, None)
    assert "\n" not in str(err.value) and "'training_log'" in str(err.value)
    for bad, field in (({"training_log": str(tmp_path / "none")}, "training_log"),
                       ({"training_log": str(folder), "K": 0}, "window"),
                       ({"training_log": str(folder), "log_alignment": "x"}, "log_alignment")):
        with pytest.raises(ConfigError) as err:
            build_method("LMCleaner", **bad)
        assert "\n" not in str(err.value) and f"'{field}'" in str(err.value)
    other = ForgetRetainDataset(token_rows(99, 2), rows[2:], pad_token_id=0, seed=0)
    with pytest.raises(ConfigError, match="none of the forget rows"):
        build_method("LMCleaner", training_log=str(folder)).prepare_model(model, other, None)
    assert build_method("LMCleanerBatch", training_log_dir=str(folder), K=5).config.window == 5
