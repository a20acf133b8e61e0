"""Unit tests of unlearning/metrics/rouge.py: hand-checkable ROUGE values and OU's clean-up rules."""

from __future__ import annotations

import pytest

from unlearning.metrics.rouge import clean_generation, ground_truth_text, rouge_metric, rouge_record


def test_recall_is_measured_against_the_ground_truth() -> None:
    # gt has 6 tokens, the generation 3 of them in order: LCS = 3
    rec = rouge_record("the cat sat on the mat", "the cat sat")
    assert rec["rougeL_recall"] == pytest.approx(3 / 6)
    assert rec["rouge1_recall"] == pytest.approx(3 / 6)
    assert rec["rougeL_f1"] == pytest.approx(2 * (3 / 6) * 1.0 / (3 / 6 + 1.0))


def test_rouge_l_uses_order_rouge_1_does_not() -> None:
    rec = rouge_record("alpha beta gamma delta", "delta gamma beta alpha")
    assert rec["rouge1_recall"] == pytest.approx(1.0)
    assert rec["rougeL_recall"] == pytest.approx(1 / 4)  # longest common subsequence has length 1


def test_stemming_case_and_punctuation() -> None:
    assert rouge_record("Running dogs", "run dog")["rougeL_recall"] == pytest.approx(1.0)  # Porter stems
    assert rouge_record("Paris", "The Eiffel Tower is in Paris, France.")["rougeL_recall"] == pytest.approx(1.0)
    rec = rouge_record("Paris", "The Eiffel Tower is in Paris, France.")
    assert rec["rougeL_f1"] == pytest.approx(2 * 1.0 * (1 / 7) / (1.0 + 1 / 7))  # precision 1/7
    assert rouge_record("some answer", "")["rougeL_recall"] == 0.0


def test_rouge_metric_layout_and_types() -> None:
    res = rouge_metric(["a b", "c d e f"], ["a b", "c"], "rougeL_recall", inputs=["q1", "q2"], indices=[5, 6])
    assert res["agg_value"] == pytest.approx((1.0 + 0.25) / 2)
    assert res["value_by_index"]["6"] == {
        "rouge1_recall": 0.25, "rougeL_f1": pytest.approx(2 * 0.25 / 1.25), "rougeL_recall": 0.25,
        "input": "q2", "ground_truth": "c d e f", "generation": "c",
    }
    f1 = rouge_metric(["a b", "c d e f"], ["a b", "c"], "rougeL_f1")
    assert f1["agg_value"] == pytest.approx((1.0 + 0.4) / 2)
    with pytest.raises(ValueError, match="rouge_type"):
        rouge_metric(["a"], ["a"], "rougeL_precision")
    with pytest.raises(ValueError, match="one entry per item"):
        rouge_metric(["a"], ["a", "b"], "rougeL_recall")


def test_clean_generation_cuts_at_eos_and_strips() -> None:
    assert clean_generation("  Answer here.</s> junk</s>", eos_text="</s>") == "Answer here."
    assert clean_generation("\n inner  spaces kept \n", eos_text="</s>") == "inner  spaces kept"


def test_clean_generation_cuts_at_earliest_stopword_whatever_their_order() -> None:
    text = " Paris Question: next\n\nQuestion: more"
    assert clean_generation(text, eos_text="</s>", stopwords=["\n\n", "Question:"]) == "Paris"
    assert clean_generation(text, eos_text="</s>", stopwords=["Question:", "\n\n"]) == "Paris"
    assert clean_generation("a\n\nb", eos_text="</s>", stopwords=["", "\n\n"]) == "a"  # empty stopword ignored


def test_clean_generation_without_eos_ignores_stopwords_like_ou() -> None:
    # OU builds [eos] + stopwords only when the tokenizer has an EOS token; otherwise nothing is cut
    assert clean_generation(" Paris\n\nQuestion: x ", eos_text=None, stopwords=["\n\n"]) == "Paris\n\nQuestion: x"


def test_ground_truth_is_label_text_minus_prompt() -> None:
    assert ground_truth_text("[INST] Who? [/INST] Basil.", "[INST] Who? [/INST]") == "Basil."
