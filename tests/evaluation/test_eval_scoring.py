"""Batched teacher-forced scoring: batched == one item at a time, and both == a hand-written float64 oracle.

Run: pytest tests/evaluation/test_eval_scoring.py -q
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval_fixtures import _splits, oracle_item, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_qa
from unlearning.evaluation.packing import common_prefix_length, packed_row, plain_row
from unlearning.evaluation.scoring import length_batches, score_items

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup():
    tok = tofu_tokenizer()
    rows = _splits()["forget10_perturbed"][:3] + _splits()["real_authors_perturbed"][:2]
    pairs = [(r["question"], r["answer"]) for r in rows]
    pairs += [(rows[0]["question"], a) for a in rows[0]["perturbed_answer"][:2]]
    items = [encode_qa(tok, get_template("plain"), q, a) for q, a in pairs]
    return tok, items


def test_batched_equals_single_items_float32(setup):
    tok, items = setup
    model = tiny_llama(len(tok), seed=3, dtype=torch.float32)
    batched = score_items(model, items, pad_token_id=tok.pad_token_id, batch_tokens=4096, vocab_stats=True)
    small = score_items(model, items, pad_token_id=tok.pad_token_id, batch_tokens=60, max_batch_size=2,
                        vocab_stats=True)  # several buckets
    # items 0, 5, 6 share the question of row 0: packed into one row around their common prefix
    packed = score_items(model, items, pad_token_id=tok.pad_token_id, vocab_stats=True, groups=[[5, 0, 6], [1, 2]])
    for i, item in enumerate(items):
        single = score_items(model, [item], pad_token_id=tok.pad_token_id, vocab_stats=True)[0]
        for other in (batched[i], small[i], packed[i]):
            assert other.avg_loss == pytest.approx(single.avg_loss, abs=1e-5)
            assert other.prob == pytest.approx(single.prob, abs=1e-5)
            np.testing.assert_allclose(other.token_log_probs, single.token_log_probs, atol=1e-5)
            np.testing.assert_allclose(other.z_scores, single.z_scores, atol=1e-4)
            assert other.es == single.es and other.em == single.em


def test_scores_match_float64_oracle(setup):
    tok, items = setup
    model = tiny_llama(len(tok), seed=1)  # float64
    scores = score_items(model, items, pad_token_id=tok.pad_token_id, vocab_stats=True, groups=[[0, 5, 6]])
    for item, got in zip(items, scores):
        want = oracle_item(model, item)
        assert got.avg_loss == pytest.approx(want["avg_loss"], rel=1e-6)
        assert got.prob == pytest.approx(math.exp(-want["avg_loss"]), rel=1e-6)
        np.testing.assert_allclose(got.token_log_probs, want["token_log_probs"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got.z_scores, want["z"], rtol=1e-6, atol=1e-7)
        assert got.es == pytest.approx(want["es"])
        assert got.em == pytest.approx(want["em"], rel=1e-6)
    assert len({round(s.es, 6) for s in scores}) > 1 or len({round(s.em, 6) for s in scores}) > 1


def test_es_em_on_a_memorised_answer(setup):
    """A model that predicts every answer token (ES = EM = 1) - a checkable non-random case."""
    tok, items = setup
    item = items[0]
    model = tiny_llama(len(tok), seed=0)
    labels = item["labels"]
    with torch.no_grad():  # zero the head, then a hook puts logit 10 on the next gold token at every position
        model.lm_head.weight.zero_()
    targets = [labels[t + 1] if t + 1 < len(labels) and labels[t + 1] != -100 else 0 for t in range(len(labels))]

    def bump(module, inputs, output):
        out = output.clone()
        for t, y in enumerate(targets):
            out[0, t, y] += 10.0
        return out

    handle = model.lm_head.register_forward_hook(bump)
    try:
        s = score_items(model, [item], pad_token_id=tok.pad_token_id)[0]
    finally:
        handle.remove()
    assert s.es == 1.0 and s.em == 1.0
    assert labels[0] == -100  # every labelled token is predicted, each by logits (10 for it, 0 elsewhere)
    expected_nll = -(10.0 - math.log(math.exp(10.0) + len(tok) - 1))
    assert s.avg_loss == pytest.approx(expected_nll, rel=1e-9)


def test_length_batches_respect_budget_and_cover_all():
    lengths = [5, 17, 3, 17, 9, 2, 11, 30]
    batches = length_batches(lengths, batch_tokens=40, max_batch_size=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 40
    assert length_batches([50], batch_tokens=10, max_batch_size=4) == [[0]]  # one over-long item still runs


def test_packing_shares_the_prompt(setup):
    tok, items = setup
    assert common_prefix_length([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # each sequence keeps one token of its own
    row = packed_row([0, 5, 6], items)
    plain = [plain_row(i, items[i]) for i in (0, 5, 6)]
    prefix = common_prefix_length([items[i]["input_ids"] for i in (0, 5, 6)])
    assert prefix >= len([t for t in items[0]["labels"] if t == -100]) - 1  # at least the prompt
    assert len(row.ids) == sum(len(p.ids) for p in plain) - 2 * prefix
    for m, p in zip(row.members, plain):  # every member predicts the same tokens from the same context
        assert list(m.targets) == list(p.members[0].targets)
        assert [row.positions[c] for c in m.cols] == [p.positions[c] for c in p.members[0].cols]
    with pytest.raises(ValueError, match="disjoint"):
        score_items(tiny_llama(len(tok)), items, pad_token_id=tok.pad_token_id, groups=[[0, 1], [1, 2]])
