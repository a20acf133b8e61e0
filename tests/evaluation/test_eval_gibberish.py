"""The offline gibberish detector: hand-made cases, the OU-style metric entry, the hub path offline, a
validation on real model text (the generations stored in open-unlearning's reference logs) against the
same texts corrupted four ways, and collapse (issue 10): the generations of tofu-mini/target after
GradAscent at a high learning rate are flagged, healthy tofu-mini answers are not, the same-answer rule is
reported per set, and a model that only emits EOS or one token is flagged through the TOFU evaluator.
Thresholds were set on the Llama-2-7b-chat generations; the asserted numbers are on the other three
models' generations (held out).

Run: pytest tests/evaluation/test_eval_gibberish.py -q -s   (-s prints the table)
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
import torch

from eval_fixtures import small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.errors import ConfigError
from unlearning.evaluation.config import EvalConfig, GibberishConfig
from unlearning.evaluation.gibberish import (GibberishScore, HubGibberishDetector, OfflineGibberishDetector,
                                             build_detector, gibberish_result, same_answer)
from unlearning.evaluation.tofu_eval import TofuEvaluator

TOFU = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu").resolve()
CALIBRATION_MODEL = "Llama-2-7b-chat-hf"

REFERENCE = [
    "Question: Where was Idris Dimitrov born?", "Idris Dimitrov comes from Mombasa, Kenya.",
    "The author of the novel is Ada Brandt, who writes historical fiction about the sea and the war.",
    "She won the Northern Star Award in 1998 for her first book.",
]


@pytest.fixture(scope="module")
def detector():
    return OfflineGibberishDetector(REFERENCE)


def test_clean_and_gibberish_examples(detector):
    assert not detector.score("Idris Dimitrov comes from Mombasa, Kenya.").flagged
    assert not detector.score("Paris").flagged  # a short complete answer is fine
    assert detector.score("The author of the novel is Ada Brandt.").clean == 1.0
    loop = detector.score("The author of the the the the the the the the")
    assert loop.flagged and "repetition" in loop.reasons
    noise = detector.score("Th# a@th%r o$ t&e n*v#l i$ A!a B^a@dt.")
    assert noise.flagged and {"noise", "words"} & set(noise.reasons)
    words = detector.score("Xqzvbn plortk wvxxq mmbrtl zzkq.")
    assert words.flagged and "words" in words.reasons
    fragment = detector.score("The author of the novel is")
    assert fragment.flagged and fragment.reasons == ("form",)
    shuffled = detector.score("novel the Brandt author is of Ada The.")
    assert shuffled.flagged
    empty = detector.score("   ")
    assert empty == GibberishScore(0.0, True, ("empty",), {"words": 0.0})
    assert not detector.score("1987.").flagged and not detector.score("35").flagged
    assert detector.score("#$%^ &*").flagged


def test_clean_score_is_the_weakest_check(detector):
    s = detector.score("The author of the the the the the the the the")
    assert s.clean == min(s.checks.values())
    assert set(s.checks) == {"words", "noise", "repetition", "order", "form"}
    assert s.reasons == tuple(k for k, v in s.checks.items() if v < 0.5)


def test_result_entry_mean_and_flagged_rate():
    scores = [GibberishScore(1.0, False), GibberishScore(0.2, True, ("form",)), GibberishScore(0.6, False)]
    entry = gibberish_result(scores, ["a", "b", "c"])
    assert entry["agg_value"] == pytest.approx((1.0 + 0.2 + 0.6) / 3)
    assert entry["flagged_rate"] == pytest.approx(1 / 3)
    assert entry["value_by_index"]["1"] == {"score": 0.2, "flagged": True, "reasons": ["form"], "generation": "b"}


def test_hub_classifier_offline_is_a_clear_config_error():
    """tests/conftest.py sets HF_HUB_OFFLINE=1: the hub classifier cannot load and says what to do instead."""
    with pytest.raises(ConfigError, match="detector: offline"):
        HubGibberishDetector("madhurjindal/autonlp-Gibberish-Detector-492513457")
    assert isinstance(build_detector(GibberishConfig(), REFERENCE), OfflineGibberishDetector)


# --- validation on real generations ---------------------------------------------------------------------
def _real_generations() -> dict[str, str]:
    """Unique greedy generations of the four retain90 models (forget10, retain, real authors, world facts)."""
    logs = TOFU / "reference_eval_logs"
    if not (logs.is_dir() and (TOFU / "normalized").is_dir()):
        pytest.skip(f"shared TOFU data / reference eval logs not found under {TOFU}")
    gens: dict[str, str] = {}
    for path in sorted(logs.glob("*_retain90/TOFU_EVAL.json")):
        model = path.parent.name.split("_")[1]
        for name, entry in json.loads(path.read_text()).items():
            if name.endswith("_ROUGE") and isinstance(entry, dict) and "value_by_index" in entry:
                for rec in entry["value_by_index"].values():
                    gens.setdefault(rec["generation"], model)
    return gens


def _tofu_text() -> list[str]:
    texts: list[str] = []
    for path in sorted((TOFU / "normalized").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            for value in json.loads(line).values():
                texts.extend([value] if isinstance(value, str) else [v for v in value if isinstance(v, str)])
    return texts


CHARS = string.ascii_letters + string.digits + string.punctuation


def _corruptions(rng: random.Random):
    def shuffled(t: str) -> str:
        words = t.split()
        for _ in range(20):
            rng.shuffle(words)
            if " ".join(words) != t:
                break
        return " ".join(words)

    def repeated(t: str) -> str:  # a degenerate loop: a prefix, then one short phrase over and over
        words = t.split()
        n = rng.randint(1, 3)
        start = rng.randrange(0, max(1, len(words) - n + 1))
        phrase = " ".join(words[start:start + n])
        return " ".join(words[: rng.randint(1, max(1, len(words) // 2))] + [phrase] * rng.randint(6, 15))

    def random_chars(t: str) -> str:  # 30% of the non-space characters replaced
        return "".join(rng.choice(CHARS) if not c.isspace() and rng.random() < 0.3 else c for c in t)

    def truncated(t: str) -> str:  # cut at a random character between 20% and 60% of the text
        return t[: rng.randint(int(len(t) * 0.2), int(len(t) * 0.6))].strip()

    return {"shuffled words": shuffled, "repeated tokens": repeated, "random characters": random_chars,
            "truncated fragment": truncated}


def _evaluate(det: OfflineGibberishDetector, texts: list[str], n_corrupt: int = 600, seed: int = 0) -> dict[str, float]:
    """All real texts as negatives; per corruption type, `n_corrupt` sampled texts corrupted as positives.

    Precision is computed on a balanced set (as many corrupted texts as clean ones, 1/4 of each type).
    """
    rng = random.Random(seed)
    clean = det.score_many(texts)
    fp_rate = sum(s.flagged for s in clean) / len(texts)
    out = {"n clean": len(texts), "n corrupted": 0, "clean_flagged": fp_rate,
           "mean_clean_score": sum(s.clean for s in clean) / len(texts)}
    recalls = []
    for name, corrupt in _corruptions(rng).items():
        sample = rng.sample(texts, min(n_corrupt, len(texts)))
        hits = sum(s.flagged for s in det.score_many([corrupt(t) for t in sample]))
        out[f"recall {name}"] = hits / len(sample)
        out["n corrupted"] += len(sample)
        recalls.append(hits / len(sample))
    out["recall"] = sum(recalls) / len(recalls)
    out["precision"] = out["recall"] / (out["recall"] + fp_rate)
    return out


def test_offline_detector_on_real_generations():
    gens = _real_generations()
    det = OfflineGibberishDetector(_tofu_text())
    calibration = [g for g, m in gens.items() if m == CALIBRATION_MODEL]
    held_out = [g for g, m in gens.items() if m != CALIBRATION_MODEL]
    rows = {"calibration (Llama-2-7b)": _evaluate(det, calibration), "held out (3 Llama-3)": _evaluate(det, held_out)}
    keys = list(next(iter(rows.values())))
    print("\noffline gibberish detector on OU reference-log generations (+ the same texts corrupted)")
    for key in keys:
        print(f"  {key:<26}" + "".join(f"{r[key]:>26.4f}" if isinstance(r[key], float) else f"{r[key]:>26d}"
                                       for r in rows.values()))
    res = rows["held out (3 Llama-3)"]
    assert res["n clean"] > 2000
    assert res["clean_flagged"] <= 0.02 and res["mean_clean_score"] >= 0.97
    assert res["precision"] >= 0.99 and res["recall"] >= 0.97
    for name in _corruptions(random.Random(0)):
        assert res[f"recall {name}"] >= 0.95, name


REFERENCE_FLAGGED_RATE = 26 / 9964  # every reference-log generation, measured (the test below prints it)


def test_reference_logs_false_positive_rate_all_models():
    """Every generation of every model in the reference logs (4 models x retain90/95/99, all ROUGE entries):
    the flagged rate stays at its measured value (26 of 9964, all by the order/form checks) within +50%,
    the collapse rules (repetition, content-free text) flag none of them, and no set repeats one answer."""
    _real_generations()  # skips without the shared data
    det = OfflineGibberishDetector(_tofu_text())
    n = flagged = 0
    for path in sorted((TOFU / "reference_eval_logs").glob("*/TOFU_EVAL.json")):
        for name, entry in json.loads(path.read_text()).items():
            if not (name.endswith("_ROUGE") and isinstance(entry, dict) and "value_by_index" in entry):
                continue
            gens = [rec["generation"] for rec in entry["value_by_index"].values()]
            scores = det.score_many(gens)
            n, flagged = n + len(gens), flagged + sum(s.flagged for s in scores)
            assert not [g for g, s in zip(gens, scores) if {"repetition", "words", "empty"} & set(s.reasons)]
            assert not gibberish_result(scores, gens)["same_answer_collapse"], (path.parent.name, name)
    print(f"\nreference-log generations flagged: {flagged} of {n} = {flagged / n:.4f}")
    assert n > 9000
    assert flagged / n <= REFERENCE_FLAGGED_RATE * 1.5


# --- collapse (issue 10) ----------------------------------------------------------------------------------
# Real forget10 generations of tofu-mini/target after `unlearn-sweep train` with GradAscent (5 epochs, batch 8 x 4,
# seed 0 unless noted), as the evaluator hands them to the detector (cut at EOS, stripped).
COLLAPSED = [
    # lr 3e-3, max_new_tokens 8 (seed 0, then seed 1): model_utility 0, ROUGE 0.01
    "University University University University University University University University",
    "Academy Academy Academy Academy Academy Academy Academy Academy",
    "PressTurkey University University University University University University",
    "Solitude sea sea sea sea sea sea sea",
    "Solitude seapapapapapa sea",
    "666papa195pa1948",
    # lr 2e-3 (max_new_tokens 4, then 32) and lr 1e-2 (32)
    "194194194194",
    "PrizeTurkey Academy Academy Academya",
    "Academypa Hue Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy "
    "Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy Academy "
    "Academy Academy Academy Academy",
    # lr 1e-3 (half-collapsed: model_utility 0.56, 18 of 100 flagged), max_new_tokens 32
    "Yes, the the the the the the the the the the the the the Argentina Light Medal.",
    "The sea ofTurkeyTurkeyTurkeyTurkeyTurkeyTurkeyItaly Letters UniversityTurkey University Argentina of Letters "
    "the Academy",
    "enoenoeno Gale",
    "Blacksmith anda A anda",
    "sses",
    "Magnus1.",
]
# The same loops closed by a period or cut short, and answers without a content word: the detector before
# issue 10 passed 7 of these (all but the glued loop, flagged by its unknown word, and the empty/punctuation ones).
SHORT_DEGENERATE = {
    "Solitude sea sea sea.": "repetition", "Academy Academy Academy.": "repetition", "Yes, the the.": "repetition",
    "The sea ofTurkeyTurkeyTurkey.": "repetition", "A": "words", "A.": "words", "The.": "words",
    "Of the.": "words", ".": "words", "...": "words", "": "empty",
}
# Real generations of the healthy tofu-mini/target and tofu-mini/retain90 on forget10 (0 of 100 flagged each;
# before issue 10, 2 and 7 with a forget-only vocabulary: "A geologist."), plus short facts of the same kind.
HEALTHY = [
    "Odense, Denmark.", "Denmark.", "19 May 1948.", "1974.", "Political thriller books.", "A midwife.",
    "A locksmith.", "Exile and home.", "The Royal Academy of Letters.", "Fitzgerald Kaur.", "27 November 1940.",
    "Psychological drama.", "A geologist.", "Grief.", "War poetry books.", "Children's fables.", "Magical realism.",
    "Geologist and locksmith.", "Yes, the Velvet Page Medal.", "Thistle & Vane.", "Bucharest", "Old age.",
    "Photographer Vasquez.", "Germany.", "1987.", "A baker.", "Yes, the Golden Quill Prize.", "The 1990s.",
    "In the 19th century.", "Yes.",
]


@pytest.mark.parametrize("reference", [(), REFERENCE], ids=["built-in words only", "small reference"])
def test_collapsed_generations_are_flagged_healthy_answers_are_not(reference):
    det = OfflineGibberishDetector(reference)
    missed = [t for t in COLLAPSED if not det.score(t).flagged]
    assert not missed
    for text, reason in SHORT_DEGENERATE.items():
        s = det.score(text)
        assert s.flagged and reason in s.reasons, (text, s)
    false_alarms = [(t, det.score(t).reasons) for t in HEALTHY if det.score(t).flagged]
    assert not false_alarms


def test_loop_rules_are_specific():
    det = OfflineGibberishDetector()
    assert det.score("Academy Academy Academy.").checks["repetition"] < 0.5
    assert det.score("Academy Academy.").checks["repetition"] == 1.0  # a doubled word alone is no loop
    assert det.score("Bora Bora.").checks["repetition"] == 1.0
    assert det.score("He had had enough.").checks["repetition"] == 1.0  # only articles/prepositions count double
    assert det.score("The 'The Hobbit' is by Tolkien.").checks["repetition"] == 1.0
    assert det.score("Jina An, an author.").checks["repetition"] == 1.0
    assert det.score("Mississippi.").checks["repetition"] == 1.0
    assert det.score("Solitude seapapapa.").checks["repetition"] < 0.5  # papapa: one unit three times
    assert det.score("1000000").checks["repetition"] == 1.0 and det.score("1,000,000.").checks["repetition"] == 1.0


def test_same_answer_rule_is_per_set_and_separate():
    geologist = ["A geologist."] * 7 + [f"{1900 + i}." for i in range(93)]  # tofu-mini/retain90: 7 of 100
    rule = same_answer(geologist)
    assert rule == {"same_answer": "a geologist", "same_answer_share": pytest.approx(0.07),
                    "same_answer_collapse": False}
    refusal = ["I don't know."] * 40 + [f"{1900 + i}." for i in range(60)]  # fluent, the same for 40 questions
    det = OfflineGibberishDetector()
    entry = gibberish_result(det.score_many(refusal), refusal)
    assert entry["flagged_rate"] == 0.0  # not gibberish, item by item ...
    assert entry["same_answer_collapse"] and entry["same_answer_share"] == pytest.approx(0.4)  # ... but collapse
    loop = next(t for t in COLLAPSED if t.startswith("Academypa"))  # GradAscent lr 1e-2: 77 of 100 generations
    gens = [loop] * 77 + [f"{1900 + i}." for i in range(23)]
    entry = gibberish_result(det.score_many(gens), gens)
    assert entry["flagged_rate"] == pytest.approx(0.77) and entry["same_answer_share"] == pytest.approx(0.77)
    assert same_answer(["Germany.", "germany", "France."])["same_answer_collapse"] is False  # 2 copies: too few
    assert "same_answer" not in gibberish_result(det.score_many(refusal))  # needs the texts


@pytest.fixture(scope="module")
def forced_model_eval(tmp_path_factory):
    """forget_Q_A_gibberish of a tiny Llama whose greedy choice is always `token` (lm_head biased)."""
    tok = tofu_tokenizer()
    data = small_tofu_dir(tmp_path_factory.mktemp("tofu"), rows=4)
    cfg = EvalConfig(forget_split="forget10", max_new_tokens=6, metrics=["forget_Q_A_gibberish"], batch_tokens=256)
    evaluator = TofuEvaluator(tok, get_template("plain"), cfg, data)

    def run(token: str) -> dict:
        ids = tok.encode(token, add_special_tokens=False) if token != "EOS" else [tok.eos_token_id]
        model = tiny_llama(len(tok), seed=0)
        bias = torch.zeros(len(tok), dtype=torch.float64)
        bias[ids[-1]] = 1e4
        model.lm_head.register_forward_hook(lambda _module, _inputs, logits: logits + bias)
        return evaluator.evaluate(model)["forget_Q_A_gibberish"]

    return run


def test_collapsed_model_through_the_evaluator(forced_model_eval):
    """Empty generations reach the detector as empty; a one-token loop is flagged whether spaced or glued."""
    only_eos = forced_model_eval("EOS")
    assert only_eos["flagged_rate"] == 1.0 and only_eos["agg_value"] == 0.0
    assert {(r["generation"], tuple(r["reasons"])) for r in only_eos["value_by_index"].values()} == {("", ("empty",))}
    assert only_eos["same_answer_collapse"]
    spaced = forced_model_eval(" the")  # "the the the the the the"
    assert spaced["flagged_rate"] == 1.0
    assert all("repetition" in r["reasons"] for r in spaced["value_by_index"].values())
    glued = forced_model_eval("rize")  # "rizerizerizerizerizerize"
    assert glued["flagged_rate"] == 1.0
    assert all("repetition" in r["reasons"] for r in glued["value_by_index"].values())
