"""The MUSE evaluator: knowmem, verbmem, privleak, extraction strength, gibberish.

What each metric is in open-unlearning: docs/methods.md, "MUSE" (OU `configs/eval/muse_metrics/*` @ d3d7cf9e).

    ev = MuseEvaluator(tokenizer, get_template("plain"), MuseEvalConfig(), corpus="news", source="/data/muse-news",
                       reference_auc=load_muse_reference_auc("retrain/MUSE_EVAL.json"))
    results = ev.evaluate(model)      # OU layout
    ev.write(results, "out/")         # MUSE_EVAL.json + MUSE_SUMMARY.json

* forget/retain_knowmem_ROUGE: `knowmem/{forget,retain}_qa`, the `*_qa_icl` pairs prepended as in-context
  examples through the template (OU: Llama-2-7b-hf "Question: ...\\nAnswer: ...\\n\\n"), greedy 32 new
  tokens, cut at the stopwords, ROUGE-L F1, mean.
* forget_verbmem_ROUGE: `verbmem/forget` prompt -> greedy 128 new tokens vs `gt` (a space joins the
  prefix and the continuation), ROUGE-L F1; extraction_strength teacher-forces the same continuation.
* mia_* / privleak: `privleak/forget` (members) vs `privleak/holdout`, raw text cut to `max_length`
  tokens; privleak relative to the retrained model's min-k AUC (0.5 when none is given).
* forget_gibberish: the gibberish detector on the verbmem generations, each judged on its complete sentences:
  verbmem decodes a fixed budget with no stopword, so a fluent continuation ends mid-sentence where the budget
  ran out, and that cut is the budget's, not the model's (`complete_sentences`; a text without a sentence end
  is judged whole).
Generation runs twice (knowmem and verbmem have different lengths and stopwords); all teacher-forced
sequences (verbmem continuations, privleak texts) share one length-bucketed scoring pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from unlearning.data.muse import load_muse, muse_corpus
from unlearning.data.templates import PromptTemplate
from unlearning.data.tokenization import encode_text, encode_text_prompt
from unlearning.evaluation.config import MuseEvalConfig
from unlearning.evaluation.generation import (decode_generations, eos_ids, greedy_generate, qa_generation_item,
                                              stopword_stop)
from unlearning.evaluation.gibberish import build_detector, gibberish_result
from unlearning.evaluation.scoring import score_items
from unlearning.metrics.primitives import IGNORE_INDEX, mean_over_items
from unlearning.metrics.privacy import mia_result, min_k_score, privleak, zlib_score
from unlearning.metrics.reference_logs import EvalLog
from unlearning.metrics.report import write_report
from unlearning.metrics.rouge import clean_generation, rouge_metric

_MIA = ("mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s)")


def complete_sentences(text: str) -> str:
    """`text` up to its last sentence end followed by more text (the fragment a token budget cut off is
    dropped); unchanged when it ends a sentence or has no sentence end."""
    stripped = text.rstrip()
    ends = list(_SENTENCE_END.finditer(stripped))
    if not ends or re.search(r"[.!?][\"')\]]?$", stripped):
        return stripped
    return stripped[:ends[-1].end()]


def load_muse_reference_auc(path: str | Path) -> float:
    """The retrained model's min-k AUC from its MUSE_EVAL.json (file or folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "MUSE_EVAL.json"
    return EvalLog.load(path).mia_auc("mia_min_k")


class MuseEvaluator:
    """Prepared MUSE evaluation for one tokenizer/template/config/corpus (see the module docstring)."""

    def __init__(self, tokenizer: Any, template: PromptTemplate, config: MuseEvalConfig | None = None,
                 corpus: str = "news", source: str | Path | None = None, reference_auc: float | None = None,
                 device: str = "cpu"):
        self.tokenizer, self.template = tokenizer, template
        self.config = config or MuseEvalConfig()
        self.corpus, self.source, self.reference_auc = muse_corpus(corpus), source, reference_auc
        selected = set(self.config.selected())
        if "privleak" in selected:
            selected.add("mia_min_k")
        if "forget_gibberish" in selected:
            selected.add("forget_verbmem_ROUGE")
        self.metrics = selected
        self.knowmem: dict[str, list[dict]] = {}
        for split in ("forget", "retain"):
            if f"{split}_knowmem_ROUGE" in selected:
                self.knowmem[split] = self._knowmem_items(split)
        self.verbmem: list[dict] = []
        self.verbmem_scored: list[dict] = []
        if selected & {"forget_verbmem_ROUGE", "extraction_strength"}:
            rows = self._load("verbmem", "forget")
            ml = self.config.max_length
            self.verbmem = [self._verbmem_item(r["prompt"], r["gt"]) for r in rows]
            self.verbmem_scored = [encode_text(tokenizer, r["gt"], ml, prefix=r["prompt"], insert_space=True)
                                   for r in rows]
        self.privleak: dict[str, list[dict]] = {}
        if selected & set(_MIA):
            for group in ("forget", "holdout"):
                rows = self._load("privleak", group)
                self.privleak[group] = [encode_text(tokenizer, r["text"], self.config.max_length) for r in rows]
        self.detector = None
        if "forget_gibberish" in selected:
            texts = [r["gt"] for r in self._load("verbmem", "forget")]
            self.detector = build_detector(self.config.gibberish, texts, device=device)

    def _load(self, subset: str, split: str) -> list[dict]:
        return load_muse(self.corpus, subset, split, self.source)

    def _knowmem_items(self, split: str) -> list[dict]:
        icl = [(r["question"], r["answer"]) for r in self._load("knowmem", f"{split}_qa_icl")]
        return [qa_generation_item(self.tokenizer, self.template, r["question"], r["answer"], self.config.max_length,
                                   few_shot=icl) for r in self._load("knowmem", f"{split}_qa")]

    def _verbmem_item(self, prompt: str, gt: str) -> dict[str, Any]:
        item = encode_text_prompt(self.tokenizer, prompt, gt, self.config.max_length, insert_space=True)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        return {"input_ids": item["input_ids"], "input_text": decode(item["input_ids"]),
                "ground_truth": decode(item["labels"]).strip()}

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def _generate(self, model: Any, items: list[dict], max_new_tokens: int, stopwords: list[str]) -> list[str]:
        ids = greedy_generate(model, [it["input_ids"] for it in items], eos_token_ids=eos_ids(self.tokenizer, model),
                              pad_token_id=self._pad_id(), max_new_tokens=max_new_tokens,
                              batch_size=self.config.generation_batch_size,
                              stop=stopword_stop(self.tokenizer, stopwords))
        return decode_generations(self.tokenizer, ids)

    def _rouge(self, items: list[dict], gens: list[str], stopwords: list[str]) -> dict[str, Any]:
        tok = self.tokenizer
        eos_text = tok.decode([tok.eos_token_id]) if tok.eos_token_id is not None else None
        outs = [clean_generation(g, eos_text, stopwords) for g in gens]
        return rouge_metric([it["ground_truth"] for it in items], outs, "rougeL_f1",
                            inputs=[it["input_text"] for it in items])

    def evaluate(self, model: Any) -> dict[str, Any]:
        cfg, out = self.config, {}
        for split, items in self.knowmem.items():
            gens = self._generate(model, items, cfg.knowmem_max_new_tokens, list(cfg.stopwords))
            out[f"{split}_knowmem_ROUGE"] = self._rouge(items, gens, list(cfg.stopwords))
        if "forget_verbmem_ROUGE" in self.metrics:
            gens = self._generate(model, self.verbmem, cfg.verbmem_max_new_tokens, [])
            out["forget_verbmem_ROUGE"] = self._rouge(self.verbmem, gens, [])
        scored = self.verbmem_scored if "extraction_strength" in self.metrics else []
        n_verb = len(scored)
        forget, holdout = self.privleak.get("forget", []), self.privleak.get("holdout", [])
        items = [*scored, *forget, *holdout]
        flags = [False] * n_verb + [("mia_min_k_plus_plus" in self.metrics)] * (len(forget) + len(holdout))
        scores = score_items(model, items, pad_token_id=self._pad_id(), batch_tokens=cfg.batch_tokens,
                             max_batch_size=cfg.max_batch_size, vocab_stats=flags,
                             attention_from_pad_id=cfg.attention_from_pad_id) if items else []
        if n_verb:
            es = [s.es for s in scores[:n_verb]]
            out["extraction_strength"] = {"agg_value": mean_over_items(es),
                                          "value_by_index": {str(i): {"score": v} for i, v in enumerate(es)}}
        f_scores, h_scores = scores[n_verb:n_verb + len(forget)], scores[n_verb + len(forget):]
        text = lambda it: self.tokenizer.decode([t for t in it["labels"] if t != IGNORE_INDEX],  # noqa: E731
                                                skip_special_tokens=True)
        attacks = {
            "mia_loss": lambda s, it: s.avg_loss,
            "mia_zlib": lambda s, it: zlib_score(s.avg_loss, text(it)),
            "mia_min_k": lambda s, it: min_k_score(s.token_log_probs, cfg.mia_k),
            "mia_min_k_plus_plus": lambda s, it: min_k_score(s.z_scores, cfg.mia_k),
        }
        for name, fn in attacks.items():
            if name in self.metrics:
                out[name] = mia_result([fn(s, it) for s, it in zip(f_scores, forget)],
                                       [fn(s, it) for s, it in zip(h_scores, holdout)])
        if "privleak" in self.metrics:
            out["privleak"] = {"agg_value": privleak(out["mia_min_k"]["auc"], self.reference_auc)}
        if "forget_gibberish" in self.metrics:
            texts = [complete_sentences(r["generation"])
                     for r in out["forget_verbmem_ROUGE"]["value_by_index"].values()]
            entry = gibberish_result(self.detector.score_many(texts), texts)
            out["forget_gibberish"] = entry
            out["forget_gibberish_rate"] = {"agg_value": entry["flagged_rate"]}
        return out

    def write(self, results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
        return write_report(out_dir, results, benchmark="MUSE")
