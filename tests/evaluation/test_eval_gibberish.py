"""The offline gibberish detector: hand-made cases, the OU-style metric entry, the hub path offline, and a
validation on real model text (the generations stored in open-unlearning's reference logs) against the
same texts corrupted four ways. Thresholds were set on the Llama-2-7b-chat generations; the asserted
numbers are on the other three models' generations (held out).

Run: pytest tests/evaluation/test_eval_gibberish.py -q -s   (-s prints the table)
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from unlearning.errors import ConfigError
from unlearning.evaluation.config import GibberishConfig
from unlearning.evaluation.gibberish import (GibberishScore, HubGibberishDetector, OfflineGibberishDetector,
                                             build_detector, gibberish_result)

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
