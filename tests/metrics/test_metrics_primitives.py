"""Unit tests of unlearning/metrics/primitives.py against hand-written loops on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from unlearning.metrics.primitives import (
    IGNORE_INDEX,
    avg_nll,
    exact_memorization,
    extraction_strength,
    mean_over_items,
    probability_records,
    token_log_probs,
    vocab_log_probs,
)

torch.set_num_threads(1)
V = 6


def log_softmax_by_hand(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, V, generator=gen, dtype=torch.float64)
    input_ids = torch.randint(0, V, (3, 7), generator=gen)
    labels = torch.full((3, 7), IGNORE_INDEX)
    labels[0, 2:6] = input_ids[0, 2:6]  # prompt 0-1, answer 2-5, padding 6
    labels[1, 4:7] = input_ids[1, 4:7]  # left-padded style: answer at the end
    labels[2, 1:7] = input_ids[2, 1:7]
    return logits, input_ids, labels


def test_avg_nll_and_probability_match_hand_loop(batch) -> None:
    logits, _, labels = batch
    records = probability_records(logits, labels)
    for b in range(3):
        nll, n = 0.0, 0
        for t in range(7):
            if labels[b, t] != IGNORE_INDEX:
                n += 1
                if t > 0:
                    nll -= log_softmax_by_hand(logits[b, t - 1].tolist())[int(labels[b, t])]
        assert avg_nll(logits, labels)[b].item() == pytest.approx(nll / n, rel=1e-12)
        assert records[b]["avg_loss"] == pytest.approx(nll / n, rel=1e-12)
        assert records[b]["prob"] == pytest.approx(math.exp(-nll / n), rel=1e-12)


def test_token_count_includes_a_labelled_first_position_like_ou() -> None:
    logits = torch.zeros(1, 3, 2, dtype=torch.float64)  # uniform: every token costs log 2
    labels = torch.tensor([[1, 0, 1]])  # position 0 labelled: counted, but never predicted
    assert avg_nll(logits, labels).item() == pytest.approx(2 * math.log(2) / 3)


def test_token_log_probs_drop_last_answer_token(batch) -> None:
    logits, input_ids, labels = batch
    got = token_log_probs(logits, input_ids, labels)
    for b in range(3):
        positions = [t for t in range(7) if labels[b, t] != IGNORE_INDEX][:-1]
        expected = [log_softmax_by_hand(logits[b, t - 1].tolist())[int(input_ids[b, t])] for t in positions]
        assert got[b].tolist() == pytest.approx(expected, rel=1e-12)
    vocab, labs = vocab_log_probs(logits, labels)
    assert [tuple(v.shape) for v in vocab] == [(3, V), (2, V), (5, V)]
    assert labs[0].tolist() == labels[0, 2:5].tolist()


def _one_hot_logits(predictions: list[list[int]], length: int) -> torch.Tensor:
    """Logits whose argmax at position t-1 is predictions[b][t] (the token predicted for position t)."""
    logits = torch.zeros(len(predictions), length, V)
    for b, preds in enumerate(predictions):
        for t, tok in enumerate(preds):
            if t > 0:
                logits[b, t - 1, tok] = 5.0
    return logits


def test_exact_memorization_and_extraction_strength_by_hand() -> None:
    # answer tokens at positions 2..6 -> scored positions 2..5 (last excluded), n = 4
    answer = [1, 2, 3, 4, 5]
    labels = torch.full((4, 7), IGNORE_INDEX)
    labels[:, 2:7] = torch.tensor(answer)
    preds = [
        [0, 0, 1, 2, 3, 4, 0],  # all 4 right            -> EM 1,   ES 1 - 0/4
        [0, 0, 1, 0, 3, 4, 0],  # wrong at 2nd token     -> EM 3/4, suffix from k=2 -> ES 1 - 2/4
        [0, 0, 0, 2, 3, 0, 0],  # last one wrong         -> EM 2/4, no suffix: OU leaves k = n-1 -> 1/4
        [0, 0, 0, 0, 0, 4, 0],  # only the last right    -> EM 1/4, k = 3 -> 1/4
    ]
    logits = _one_hot_logits(preds, 7)
    assert exact_memorization(logits, labels) == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert extraction_strength(logits, labels) == pytest.approx([1.0, 0.5, 0.25, 0.25])


def test_items_without_scored_tokens() -> None:
    labels = torch.full((2, 4), IGNORE_INDEX)
    labels[0, 3] = 2  # one labelled token: nothing left after dropping the last
    logits = torch.zeros(2, 4, V)
    assert exact_memorization(logits, labels) == [None, None]
    assert extraction_strength(logits, labels) == [0.0, 0.0]
    assert [t.numel() for t in token_log_probs(logits, torch.zeros(2, 4, dtype=torch.long), labels)] == [0, 0]


def test_non_contiguous_labels_are_rejected() -> None:
    labels = torch.tensor([[IGNORE_INDEX, 1, IGNORE_INDEX, 1, 1]])
    with pytest.raises(ValueError, match="contiguous"):
        exact_memorization(torch.zeros(1, 5, V), labels)


def test_mean_over_items_averages_multi_answer_items_and_drops_none() -> None:
    assert mean_over_items([0.2, None, 0.6]) == pytest.approx(0.4)
    assert mean_over_items([[0.1, 0.3], [0.5, 0.7]]) == pytest.approx((0.2 + 0.6) / 2)
    assert math.isnan(mean_over_items([None]))
