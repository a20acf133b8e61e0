"""Gibberish scores of generated text: an offline rule-based detector (default) and the hub classifier.

The reference (BalDRO; docs/methods.md, "Gibberish") scores each greedy forget-set generation with the Hugging Face
classifier `madhurjindal/autonlp-Gibberish-Detector-492513457` and reports the mean P(clean). That model
cannot be downloaded here, so the default is an offline detector that needs no model and no network.

Offline detector: every text gets five check scores in [0, 1] (1 = clean, 0.5 = the flagging threshold,
0 = clearly gibberish). Its clean score is the weakest check; a text is flagged when that is below 0.5,
and the checks below 0.5 are its `reasons`.

* words      share of word tokens that are real words: in the vocabulary (every word of the benchmark's
             reference text plus a built-in English list, `english_words.txt`, with simple suffix
             stemming) or a capitalised pronounceable token (a name). Catches random characters. A text
             with no content word (only function words or single letters, no digit: "A", "The.", "Of the.")
             scores 0.
* noise      share of non-space characters outside letters, digits and ordinary punctuation, plus the
             share of tokens that mix letters and digits (ordinals/decades like 19th, 1950s allowed).
             Catches character noise.
* repetition share of repeated token trigrams, and the longest loop: a run of one token ("sea sea sea."),
             a unit of 2+ different letters/digits repeated inside one token ("TurkeyTurkeyTurkey", "papapa",
             "194194194": 3), a doubled article or preposition ("the the", not "The 'The") one more. A loop
             of 3 is flagged however short the text, numbers included. Catches degenerate loops.
* order      mean pointwise mutual information of adjacent word classes (each of the 300 most frequent
             reference words is its own class, every other word one class, plus sentence start/end),
             learned from the reference text; texts of 4+ words. Catches shuffled words / word salad.
* form       starts like a sentence; ends with terminal punctuation, possibly followed by a closing quote
             or bracket (texts of 3+ tokens, or 2 tokens ending
             in a function word or possessive, e.g. "The author's"); no lower-case word right after a
             sentence end. Catches truncated fragments (short complete answers like "Paris" pass).

Empty generations (nothing left after the EOS cut and strip) score 0 (flagged, reason "empty"); a text
of numbers only ("1987.") is clean unless it loops, one of symbols/punctuation only is flagged ("words").

Same-answer collapse is a per-set rule, reported beside the per-item flags (`gibberish_result` with
texts), never folded into them: `same_answer_share` = the share of generations equal to the set's most
common one (compared lower-cased, outer punctuation stripped); `same_answer_collapse` = that share above
0.25 with 3+ copies. Healthy tofu-mini models repeat short facts ("Exile and home.", "A geologist.") on
up to 0.07 of forget10 (one question type covers ~0.10 of it); OU's reference generations never repeat.
A fluent answer given to every question (e.g. the refusal IdkNLL trains) is collapse, not gibberish.

The metric reports both numbers (docs/methods.md, "Gibberish"):
mean clean score (`agg_value`, comparable in direction to the classifier's mean P(clean)) and the rate of
flagged generations. Thresholds were set on the Llama-2-7b-chat generations stored in the reference logs;
`tests/evaluation/test_eval_gibberish.py` reports precision/recall on all four models' generations and
the flagged rate on collapsed tofu-mini generations (GradAscent at a high learning rate).

    det = OfflineGibberishDetector(reference_texts=all_benchmark_strings)
    res = gibberish_result(det.score_many(generations), generations)  # OU layout + flagged_rate + same_answer_*
    det = build_detector(GibberishConfig(detector="hub"))    # the hub classifier (needs the hub)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from unlearning.errors import ConfigError
from unlearning.evaluation.config import HUB_GIBBERISH_MODEL, GibberishConfig

WORDS_FILE = Path(__file__).resolve().parent / "english_words.txt"
N_CLASS_WORDS = 300
THRESHOLD = 0.5
SAME_ANSWER_SHARE = 0.25  # per-set rule: more than this share of the generations identical = collapse
SAME_ANSWER_MIN = 3

_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_TOKEN = re.compile(r"\S+")
_MIXED = re.compile(r"(?=\S*[^\W\d_])(?=\S*\d)[^\W_]+")
_UNITS = "st|nd|rd|th|s|d|k|m|km|kg|cm|mm|am|pm"
_ORDINAL = re.compile(rf"\d+(?:{_UNITS})", re.IGNORECASE)  # 19th, 1950s, 3D, 5km
_UNIT_SUFFIX = re.compile(rf"(?<=\d)(?:{_UNITS})\b", re.IGNORECASE)  # the "th" of 19th is no word
_STRIP = ".,;:!?\"'()[]“”‘’"
_FUNCTION_END = frozenset("a an the of in on at to for from by with and or but as is was are were his her "
                          "their its this that these those my your our".split())
_ALLOWED_PUNCT = ".,;:!?'\"()[]-–—’‘“”/&%$€£+*=#@…"
_ODD = re.compile("[^\\w\\s" + re.escape(_ALLOWED_PUNCT) + "]|_")  # not a letter/digit, space or ordinary punctuation
_SPACE = re.compile(r"\s")
_NUMERIC = re.compile(r"[\d\s.,:;/%$€£+\-()]*\d[\d\s.,:;/%$€£+\-()]*")
_VOWELS = set("aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿ")
_SUFFIXES = ("'s", "’s", "s", "es", "ed", "d", "ing", "ly", "er", "ers", "est", "ness", "ment", "ful")
_END = set(".!?…")
_CLOSERS = set("\"')]”’")
_START_EXTRA = set("\"'(“‘[")
_SENTENCE_THEN_LOWER = re.compile(r"\b([a-z]{2,})[.!?]\s+[a-z]")
_ABBREVIATIONS = frozenset("vs etc approx incl esp ca cf al".split())
_DOUBLED = frozenset("a an the of in on at to for from by with and or".split())  # "the the" is a loop
_GLUED_LOOP = re.compile(r"([^\W_]{2,24}?)\1{2,}")  # a unit 3+ times in a token: TurkeyTurkeyTurkey, 194194194


@dataclass(frozen=True)
class GibberishScore:
    """One text's score: `clean` in [0, 1] (higher = cleaner), `flagged`, the failing checks, all checks."""

    clean: float
    flagged: bool
    reasons: tuple[str, ...] = ()
    checks: dict[str, float] = field(default_factory=dict)


class Detector(Protocol):
    def score_many(self, texts: Sequence[str]) -> list[GibberishScore]: ...


def _ramp(x: float, bad: float, threshold: float, good: float) -> float:
    """Piecewise-linear check score: 0 at `bad`, 0.5 at `threshold`, 1 at `good` (either direction)."""
    sign = 1.0 if good > bad else -1.0
    x, bad, threshold, good = sign * x, sign * bad, sign * threshold, sign * good
    if x <= bad:
        return 0.0
    if x >= good:
        return 1.0
    if x <= threshold:
        return 0.5 * (x - bad) / (threshold - bad)
    return 0.5 + 0.5 * (x - threshold) / (good - threshold)


@lru_cache(maxsize=1)
def builtin_words() -> frozenset[str]:
    """The built-in English word list (lower case)."""
    words: set[str] = set()
    for line in WORDS_FILE.read_text(encoding="utf-8").splitlines():
        words.update(line.split("#", 1)[0].split())
    return frozenset(words)


def words_of(text: str) -> list[str]:
    """Word tokens of a text (letters, with inner apostrophes/hyphens), original case."""
    return _WORD.findall(text)


def _pronounceable(word: str) -> bool:
    low = word.lower()
    if not any(c in _VOWELS for c in low) or len(low) > 20:
        return False
    if re.search(r"(.)\1\1", low):
        return False
    return not re.search(r"[^aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿ'’\-]{5,}", low)


def _name_like(word: str) -> bool:
    """A capitalised pronounceable token (each hyphen/apostrophe part Title-case or lower case), or a short
    all-caps acronym."""
    if word.isupper():
        return len(word) <= 5
    parts = [p for p in re.split(r"['’\-]", word) if p]
    shaped = all(p[1:].islower() or len(p) == 1 for p in parts)
    return word[:1].isupper() and shaped and _pronounceable(word)


def _right_bare(token: str) -> str:
    """Lower case without trailing punctuation: "the the." is a loop, "The 'The Hobbit'" and "An, an" are not."""
    return token.rstrip(_STRIP).lower()


def _glued_repeats(token: str) -> int:
    """How often a unit of 2+ different letters/digits repeats back to back in a token (1 = none): papapa -> 3,
    194194194 -> 3, 1000000 -> 1."""
    return max((len(m.group(0)) // len(m.group(1)) for m in _GLUED_LOOP.finditer(token) if len(set(m.group(1))) > 1),
               default=1)


class OfflineGibberishDetector:
    """Rule-based gibberish scores (see the module docstring); `reference_texts` = the benchmark's text."""

    def __init__(self, reference_texts: Iterable[str] = (), threshold: float = THRESHOLD):
        self.threshold = threshold
        counts: Counter[str] = Counter()
        docs: list[list[str]] = []
        for text in dict.fromkeys(reference_texts):  # splits overlap (forget is part of full): count each text once
            ws = [w.lower() for w in words_of(text)]
            counts.update(ws)
            docs.append(ws)
        self.vocab = frozenset(counts) | builtin_words()
        self.class_words = frozenset(w for w, _ in counts.most_common(N_CLASS_WORDS))
        self._unigram: Counter[str] = Counter()
        self._bigram: Counter[tuple[str, str]] = Counter()
        for ws in docs:
            seq = ["<s>", *(self._cls(w) for w in ws), "</s>"]
            self._unigram.update(seq)
            self._bigram.update(zip(seq, seq[1:]))
        self._total = sum(self._unigram.values())
        self._n_classes = len(self._unigram)

    # --- the five checks ---------------------------------------------------------------------------
    def _cls(self, word: str) -> str:
        return word if word in self.class_words else "<w>"

    def known(self, word: str) -> bool:
        """Vocabulary word, a suffix form of one, a hyphen/apostrophe compound of them, a name or an initial."""
        low = word.lower()
        if len(word) == 1:
            return word.isupper() or low in ("a", "i")
        if low in self.vocab:
            return True
        if any(low.endswith(s) and low[: -len(s)] in self.vocab for s in _SUFFIXES if len(low) > len(s) + 1):
            return True
        parts = [p for p in re.split(r"['’\-]", low) if p]
        if len(parts) > 1 and all(p in self.vocab or len(p) == 1 for p in parts):
            return True
        return _name_like(word)

    def _words_check(self, text: str, words: list[str]) -> float:
        if not any(c.isdigit() for c in text) and all(len(w) == 1 or w.lower() in _FUNCTION_END for w in words):
            return 0.0  # no content word: "A", "The.", "Of the."
        share = sum(self.known(w) for w in words) / len(words)
        return _ramp(share, bad=0.4, threshold=0.75, good=0.9)

    @staticmethod
    def _noise_check(text: str, tokens: list[str]) -> float:
        n_chars = len(text) - len(_SPACE.findall(text))
        odd = len(_ODD.findall(text)) / max(n_chars, 1)
        bare = [t.strip(_STRIP) for t in tokens]
        mixed = sum(bool(_MIXED.fullmatch(t)) and not _ORDINAL.fullmatch(t) and not t.isupper()
                    for t in bare) / max(len(tokens), 1)
        return _ramp(odd + mixed, bad=0.2, threshold=0.05, good=0.0)

    @staticmethod
    def _repetition_check(tokens: list[str]) -> float:
        low = [t.strip(_STRIP).lower() or t for t in tokens]
        longest = max(_glued_repeats(t) for t in low)
        run = 1
        for i, (a, b) in enumerate(zip(low, low[1:])):
            run = run + 1 if a == b else 1
            doubled = run > 1 and b in _DOUBLED and tokens[i].lower() == _right_bare(tokens[i + 1])
            longest = max(longest, run + doubled)
        score = _ramp(longest, bad=5, threshold=2.5, good=2)
        trigrams = list(zip(low, low[1:], low[2:]))
        if len(trigrams) >= 4:
            dup = 1 - len(set(trigrams)) / len(trigrams)
            score = min(score, _ramp(dup, bad=0.7, threshold=0.3, good=0.1))
        return score

    def order_pmi(self, words: list[str]) -> float:
        """Mean PMI log P(c2 | c1) - log P(c2) of adjacent word classes, add-0.1 smoothed."""
        seq = ["<s>", *(self._cls(w.lower()) for w in words), "</s>"]
        k, v = 0.1, self._n_classes + 1
        total = 0.0
        for a, b in zip(seq, seq[1:]):
            p_cond = (self._bigram[(a, b)] + k) / (self._unigram[a] + k * v)
            p_b = (self._unigram[b] + k) / (self._total + k * v)
            total += math.log(p_cond) - math.log(p_b)
        return total / (len(seq) - 1)

    def _order_check(self, words: list[str]) -> float:
        if len(words) < 4 or not self._total:
            return 1.0
        return _ramp(self.order_pmi(words), bad=-0.8, threshold=-0.2, good=0.1)

    @staticmethod
    def _form_check(text: str, tokens: list[str]) -> float:
        penalties = 0
        first = text[0]
        if not (first.isupper() or first.isdigit() or first in _START_EXTRA):
            penalties += 1
        last = tokens[-1].lower()
        dangling = last in _FUNCTION_END or last.endswith(("'s", "’s"))
        closed = text[-1] in _END or (text[-1] in _CLOSERS and len(text) > 1 and text[-2] in _END)
        if not closed and (len(tokens) >= 3 or (len(tokens) >= 2 and dangling)):
            penalties += 1
        if tokens[-1].endswith("-"):
            penalties += 1
        penalties += sum(w not in _ABBREVIATIONS for w in _SENTENCE_THEN_LOWER.findall(text))
        return max(0.0, 1.0 - 0.6 * penalties)

    # --- public API ---------------------------------------------------------------------------------
    def score(self, text: str) -> GibberishScore:
        """Clean score of one text = the weakest check; flagged when below the threshold."""
        text = text.strip()
        if not text:
            return GibberishScore(0.0, True, ("empty",), {"words": 0.0})
        bare = _UNIT_SUFFIX.sub("", text)  # the "s" of "1990s" is no word
        content = words_of(bare)
        tokens = _TOKEN.findall(text)
        if not content:  # numbers only ("1987.", "35", "1990s.") are a clean answer unless they loop; symbols are not
            if not _NUMERIC.fullmatch(bare):
                return GibberishScore(0.0, True, ("words",), {"words": 0.0})
            loop = self._repetition_check(tokens)
            flagged = loop < self.threshold
            return GibberishScore(loop, flagged, ("repetition",) if flagged else (), {"words": 1.0, "repetition": loop})
        checks = {
            "words": self._words_check(text, content),
            "noise": self._noise_check(text, tokens),
            "repetition": self._repetition_check(tokens),
            "order": self._order_check(words_of(text)),
            "form": self._form_check(text, tokens),
        }
        clean = min(checks.values())
        reasons = tuple(name for name, value in checks.items() if value < self.threshold)
        return GibberishScore(clean, clean < self.threshold, reasons, checks)

    def score_many(self, texts: Sequence[str]) -> list[GibberishScore]:
        return [self.score(t) for t in texts]


class HubGibberishDetector:
    """The reference's classifier (DistilBERT, labels 0 clean / 1 mild / 2 noise / 3 word salad).

    Score = softmax probability of class 0 (as open-unlearning's `classifier_prob`); flagged when the
    argmax is not class 0. Needs the model from the Hugging Face Hub or a local copy (`model_id` = path).
    """

    def __init__(self, model_id: str = HUB_GIBBERISH_MODEL, max_length: int = 32, batch_size: int = 32,
                 device: str = "cpu"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_id)
            self.model = AutoModelForSequenceClassification.from_pretrained(model_id).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError("gibberish.hub_model", field="hub_model", value=model_id,
                              fix="the hub classifier could not be loaded (no network or no local copy: "
                                  f"{str(exc).splitlines()[0][:160]}); use gibberish.detector: offline, "
                                  "or point hub_model to a downloaded copy") from None
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
        self.labels = getattr(self.model.config, "id2label", {}) or {}

    def score_many(self, texts: Sequence[str]) -> list[GibberishScore]:
        import torch

        out: list[GibberishScore] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start:start + self.batch_size])
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_length).to(self.device)
            with torch.no_grad():
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().numpy()
            for row in probs:
                top = int(np.argmax(row))
                reason = () if top == 0 else (str(self.labels.get(top, top)),)
                out.append(GibberishScore(float(row[0]), top != 0, reason, {}))
        return out


def build_detector(config: GibberishConfig, reference_texts: Iterable[str] = (), device: str = "cpu") -> Detector:
    """The detector selected by `config.detector` ("offline" or "hub")."""
    if config.detector == "hub":
        return HubGibberishDetector(config.hub_model, config.max_length, config.batch_size, device)
    return OfflineGibberishDetector(reference_texts, threshold=config.threshold)


def gibberish_result(scores: Sequence[GibberishScore], texts: Sequence[str] | None = None,
                     indices: Sequence[int | str] | None = None) -> dict[str, Any]:
    """OU-style entry: agg_value = mean clean score, flagged_rate, per item score/flagged/reasons; with `texts`
    also the per-set same-answer rule (`same_answer`, `same_answer_share`, `same_answer_collapse`)."""
    keys = [str(i) for i in (indices if indices is not None else range(len(scores)))]
    if len(keys) != len(scores) or (texts is not None and len(texts) != len(scores)):
        raise ValueError("scores, texts and indices must have one entry per generation")
    by_index: dict[str, dict[str, Any]] = {}
    for n, (key, s) in enumerate(zip(keys, scores)):
        record: dict[str, Any] = {"score": s.clean, "flagged": s.flagged, "reasons": list(s.reasons)}
        if texts is not None:
            record["generation"] = texts[n]
        by_index[key] = record
    clean = [s.clean for s in scores]
    out: dict[str, Any] = {
        "agg_value": float(np.mean(clean)) if clean else float("nan"),
        "flagged_rate": float(np.mean([s.flagged for s in scores])) if scores else float("nan"),
    }
    if texts is not None and texts:
        out.update(same_answer(texts))
    out["value_by_index"] = by_index
    return out


def same_answer(texts: Sequence[str]) -> dict[str, Any]:
    """The per-set rule: the most common generation, its share of the set and whether that is a collapse."""
    counts = Counter(" ".join(t.split()).strip(_STRIP + " ").lower() for t in texts)
    answer, n = counts.most_common(1)[0]
    share = n / len(texts)
    return {"same_answer": answer, "same_answer_share": share,
            "same_answer_collapse": share > SAME_ANSWER_SHARE and n >= SAME_ANSWER_MIN}
