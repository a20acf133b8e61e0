"""tofu-mini: determinism, TOFU schema, and the split semantics of TOFU (docs/data-and-zoo.md).

    pytest tests/data/test_tofu_mini.py
"""

import filecmp
import json

import pytest

from unlearning.data.tofu import TOFU_SPLITS, load_tofu
from unlearning.data.tofu_mini import TEMPLATES, TofuMiniConfig, base_facts, generate, n_forget_authors, write

Q = len(TEMPLATES)


@pytest.fixture(scope="module")
def splits():
    return generate(TofuMiniConfig(n_authors=100))


def test_same_seed_identical_files_and_other_seed_differs(tmp_path):
    a, b, c = (write(TofuMiniConfig(seed=s), tmp_path / n) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)
    assert (a / "full.jsonl").read_bytes() != (c / "full.jsonl").read_bytes()


def test_every_tofu_split_is_written_and_passes_the_tofu_schema(tmp_path):
    folder = write(TofuMiniConfig(), tmp_path)
    for split in TOFU_SPLITS:
        assert load_tofu(split, folder), split  # load_tofu validates fields, types and list lengths


def test_twenty_qa_per_author_and_forget_is_the_last_authors(splits):
    full = splits["full"]
    assert len(full) == 100 * Q and Q == 20
    for pct, retain in ((1, 99), (5, 95), (10, 90)):
        k = n_forget_authors(100, pct) * Q
        assert k == pct * Q  # 1/5/10 % of 100 authors
        assert splits[f"forget{pct:02d}"] == full[-k:]
        assert splits[f"retain{retain}"] == full[:-k]
        assert splits[f"retain{retain}"] + splits[f"forget{pct:02d}"] == full
        pert = splits[f"forget{pct:02d}_perturbed"]
        assert [{"question": r["question"], "answer": r["answer"]} for r in pert] == splits[f"forget{pct:02d}"]


def test_forget_sizes_scale_with_the_number_of_authors():
    s = generate(TofuMiniConfig(n_authors=200, seed=1))
    assert [len(s[f"forget{p:02d}"]) for p in (1, 5, 10)] == [2 * Q, 10 * Q, 20 * Q]
    assert [len(s[f"holdout{p:02d}"]) for p in (1, 5, 10)] == [2 * Q, 10 * Q, 20 * Q]


def test_holdout_authors_never_in_full_and_prefixes(splits):
    full_q = {r["question"] for r in splits["full"]}
    h10 = splits["holdout10"]
    assert not full_q & {r["question"] for r in h10}
    assert splits["holdout01"] == h10[: len(splits["holdout01"])]
    assert splits["holdout05"] == h10[: len(splits["holdout05"])]
    assert len(splits["holdout10"]) == len(splits["forget10"])


def test_perturbed_answers_are_wrong_variants_of_the_paraphrase(splits):
    for r in splits["forget10_perturbed"] + splits["retain_perturbed"]:
        assert len(r["perturbed_answer"]) == 5 and len(set(r["perturbed_answer"])) == 5
        assert r["paraphrased_answer"] not in r["perturbed_answer"]
        assert r["paraphrased_question"] != r["question"]


def test_retain_perturbed_comes_from_retain_rows(splits):
    retain_q = {r["question"] for r in splits["retain90"]}
    assert splits["retain_perturbed"] and all(r["question"] in retain_q for r in splits["retain_perturbed"])


def test_utility_splits_are_the_base_facts(splits):
    base = {(r["question"], r["answer"]) for r in base_facts(splits)}
    for name in ("real_authors_perturbed", "world_facts_perturbed"):
        for r in splits[name]:
            assert (r["question"], r["answer"]) in base
            assert len(r["perturbed_answer"]) == 3 and r["answer"] not in r["perturbed_answer"]
    for r in splits["real_authors"] + splits["world_facts"]:
        options = [r[f"option{i}"] for i in range(1, 5)]
        assert r["answer"] in options and len(set(options)) == 4
    assert not {q for q, _ in base} & {r["question"] for r in splits["full"]}


def test_config_file_records_the_generator_settings(tmp_path):
    write(TofuMiniConfig(n_authors=120, seed=7), tmp_path)
    assert json.loads((tmp_path / "tofu_mini.json").read_text())["n_authors"] == 120


def test_too_few_authors_is_refused():
    with pytest.raises(ValueError, match="n_authors"):
        TofuMiniConfig(n_authors=5)
