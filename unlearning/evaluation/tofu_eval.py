"""The TOFU evaluator: every open-unlearning TOFU metric from one scoring pass and one generation pass.

    ev = TofuEvaluator(tokenizer, template, EvalConfig(forget_split="forget10"), source="/path/to/tofu-mini",
                       reference=load_reference("retain90/TOFU_EVAL.json"))   # or reference_for(...)
    results = ev.evaluate(model)          # {metric: {"agg_value": ..., "value_by_index": {...}}} (OU layout)
    ev.write(results, "out/")             # TOFU_EVAL.json + TOFU_SUMMARY.json
    results = evaluate_tofu(model, tokenizer, template, EvalConfig(), source)   # one-shot

What is computed once (OU's TOFU evaluation runs 10N + 3668 forwards and N + 617 generations: docs/methods.md,
"What an evaluation costs"):
* the data is loaded and tokenised when the evaluator is built, so a sweep re-evaluating every epoch
  pays for it once;
* every teacher-forced sequence of the selected metrics (forget answers, paraphrased and 5 perturbed
  answers, holdout, retain / real-author / world-fact answers and their perturbations) goes through
  ONE length-bucketed scoring pass; the forget-answer forward serves forget_Q_A_Prob, extraction
  strength, exact memorisation and all four MIAs at once (8N + 3668 sequences instead of 10N + 3668),
  and the answers of one question are packed into one row around their shared prompt
  (`share_prefix`, see packing.py), so each prompt is computed once;
* every generation (forget, retain, real authors, world facts) goes through ONE greedy pass with the
  KV cache, each sequence stopping at its EOS; gibberish reuses the forget generations;
* the retain model's statistics (forget_quality, privleak) come from a `RetainReference` loaded or
  computed once per sweep (`reference.py`).

Metric names and per-item records follow OU's TOFU_EVAL.json (docs/methods.md, "Evaluation: the metrics as open-unlearning computes them"); `metrics`
selects a subset, and a selected metric brings the entries it is built from (model_utility -> its 9
inputs, forget_quality -> forget_truth_ratio, privleak -> mia_min_k, truth ratios -> PARA/PERT probs).
Extra entries of ours: `forget_Q_A_gibberish` (mean clean score, with `flagged_rate`) and
`forget_Q_A_gibberish_rate`. OU's `mia_gradnorm` (per-item backward passes) is not computed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearning.data.templates import PromptTemplate
from unlearning.data.tofu import load_tofu
from unlearning.data.tokenization import encode_qa
from unlearning.errors import DataError
from unlearning.evaluation.config import EvalConfig
from unlearning.evaluation.generation import (decode_generations, eos_ids, greedy_generate, qa_generation_item,
                                              stopword_stop)
from unlearning.evaluation.gibberish import build_detector, gibberish_result
from unlearning.metrics.reference_logs import RetainReference
from unlearning.evaluation.scoring import ItemScore, score_items
from unlearning.evaluation.tofu_plan import PROB_KINDS, UTILITY_SPLITS, metrics_closure, needs_of
from unlearning.metrics.primitives import IGNORE_INDEX, mean_over_items
from unlearning.metrics.privacy import min_k_score, mia_result, privleak, zlib_score
from unlearning.metrics.report import write_report
from unlearning.metrics.rouge import clean_generation, rouge_metric
from unlearning.metrics.tofu_metrics import MODEL_UTILITY_INPUTS, forget_quality, model_utility
from unlearning.metrics.truth_ratio import probability_w_options, truth_ratio_metric

logger = logging.getLogger(__name__)

@dataclass
class _Group:
    """One TOFU split as the evaluator uses it: questions, answers and the tokenised items."""

    name: str
    split: str
    rows: list[dict]
    question_key: str = "question"
    score_slots: dict[str, list[Any]] = field(default_factory=dict)  # kind -> per row: item id or list of ids
    gen_slots: list[int] = field(default_factory=list)

    def question(self, i: int) -> str:
        return self.rows[i][self.question_key]


class TofuEvaluator:
    """Prepared TOFU evaluation for one tokenizer/template/config (see the module docstring)."""

    def __init__(self, tokenizer: Any, template: PromptTemplate, config: EvalConfig | None = None,
                 source: str | Path = "locuslab/TOFU", reference: RetainReference | None = None,
                 device: str = "cpu"):
        t0 = time.perf_counter()
        self.tokenizer, self.template, self.source = tokenizer, template, source
        self.config = config or EvalConfig()
        self.reference = reference
        self.device = device
        self.metrics = metrics_closure(self.config.selected())
        self.needs = needs_of(self.metrics)
        self.groups = self._load_groups()
        self.score_items: list[dict[str, list[int]]] = []
        self.vocab_flags: list[bool] = []
        self.pack_groups: list[list[int]] = []  # a question's answer / paraphrased / perturbed items
        self.gen_items: list[dict[str, Any]] = []
        self._encode()
        self.detector = None
        if "forget_Q_A_gibberish" in self.metrics:
            self.detector = build_detector(self.config.gibberish, self._reference_texts(), device=device)
        self.timings: dict[str, float] = {"prepare": time.perf_counter() - t0}

    # --- preparation -------------------------------------------------------------------------------
    def _load_groups(self) -> dict[str, _Group]:
        cfg = self.config
        wanted = {g for g, _ in self.needs}
        splits = {"forget": f"{cfg.forget_split}_perturbed", "holdout": cfg.holdout(), **UTILITY_SPLITS}
        groups: dict[str, _Group] = {}
        for name in ("forget", "holdout", "retain", "ra", "wf"):
            if name not in wanted:
                continue
            rows = load_tofu(splits[name], self.source)
            key = cfg.question_key if name == "forget" else "question"
            for i, row in enumerate(rows):
                if not isinstance(row.get(key), str) or not row[key].strip():
                    raise DataError(f"{self.source}: {splits[name]}", row=i, field=key, value=row.get(key),
                                    fix="question_key must name a non-empty text field of every forget row "
                                        "(e.g. question or paraphrased_question)")
            groups[name] = _Group(name, splits[name], rows, key)
        return groups

    def _add_score(self, question: str, answer: str, vocab: bool) -> int:
        self.score_items.append(encode_qa(self.tokenizer, self.template, question, answer, self.config.max_length))
        self.vocab_flags.append(vocab)
        return len(self.score_items) - 1

    def _encode(self) -> None:
        want_pp = "mia_min_k_plus_plus" in self.metrics
        by_question: dict[tuple[str, int], list[int]] = {}
        for (name, kind) in sorted(self.needs):
            g = self.groups[name]
            if kind == "gen":
                for i, row in enumerate(g.rows):
                    self.gen_items.append(qa_generation_item(self.tokenizer, self.template, g.question(i),
                                                             row["answer"], self.config.max_length))
                    g.gen_slots.append(len(self.gen_items) - 1)
                continue
            slots: list[Any] = []
            for i, row in enumerate(g.rows):
                q = g.question(i)
                if kind == "answer":
                    slots.append(self._add_score(q, row["answer"], want_pp and name in ("forget", "holdout")))
                elif kind == "para":
                    slots.append(self._add_score(q, row["paraphrased_answer"], False))
                else:
                    slots.append([self._add_score(q, a, False) for a in row["perturbed_answer"]])
                by_question.setdefault((name, i), []).extend(slots[-1] if kind == "pert" else [slots[-1]])
            g.score_slots[kind] = slots
        if self.config.share_prefix:
            self.pack_groups = [ids for ids in by_question.values() if len(ids) > 1]

    def _reference_texts(self) -> list[str]:
        texts: list[str] = []
        for g in self.groups.values():
            for row in g.rows:
                for value in row.values():
                    if isinstance(value, str):
                        texts.append(value)
                    elif isinstance(value, list):
                        texts.extend(v for v in value if isinstance(v, str))
        return texts

    # --- running the model -------------------------------------------------------------------------
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def _score(self, model: Any) -> list[ItemScore]:
        cfg = self.config
        return score_items(model, self.score_items, pad_token_id=self._pad_id(), batch_tokens=cfg.batch_tokens,
                           max_batch_size=cfg.max_batch_size, vocab_stats=self.vocab_flags,
                           attention_from_pad_id=cfg.attention_from_pad_id, groups=self.pack_groups)

    def _generate(self, model: Any) -> list[str]:
        if not self.gen_items:
            return []
        ids = greedy_generate(model, [it["input_ids"] for it in self.gen_items],
                              eos_token_ids=eos_ids(self.tokenizer, model),
                              pad_token_id=self._pad_id(), max_new_tokens=self.config.max_new_tokens,
                              batch_size=self.config.generation_batch_size,
                              stop=stopword_stop(self.tokenizer, self.config.stopwords))
        return decode_generations(self.tokenizer, ids)

    def evaluate(self, model: Any) -> dict[str, Any]:
        """Run the model on every selected metric; OU-layout results {metric: entry}."""
        t0 = time.perf_counter()
        scores = self._score(model)
        t1 = time.perf_counter()
        raw_gens = self._generate(model)
        t2 = time.perf_counter()
        results = self._metrics(scores, raw_gens)
        t3 = time.perf_counter()
        self.timings.update(score=t1 - t0, generate=t2 - t1, metrics=t3 - t2)
        logger.info("TOFU eval: %d sequences scored in %.2fs, %d generations in %.2fs",
                    len(self.score_items), t1 - t0, len(self.gen_items), t2 - t1)
        return results

    def write(self, results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
        """TOFU_EVAL.json + TOFU_SUMMARY.json in out_dir (OU layout)."""
        return write_report(out_dir, results, benchmark="TOFU")

    # --- metrics from the per-item statistics ---------------------------------------------------------
    def _prob_entry(self, scores: list[ItemScore], slots: list[Any]) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        for slot in slots:
            if isinstance(slot, list):
                records.append({"prob": [scores[j].prob for j in slot], "avg_loss": [scores[j].avg_loss for j in slot]})
            else:
                records.append({"prob": scores[slot].prob, "avg_loss": scores[slot].avg_loss})
        agg = mean_over_items(r["prob"] for r in records)
        return {"agg_value": agg, "value_by_index": {str(i): r for i, r in enumerate(records)}}

    def _clean_generations(self, group: _Group, gens: list[str]) -> list[str]:
        """A group's generations cut at the EOS string / stopwords and stripped (OU's rules)."""
        tok = self.tokenizer
        eos_text = tok.decode([tok.eos_token_id]) if tok.eos_token_id is not None else None
        return [clean_generation(gens[slot], eos_text, self.config.stopwords) for slot in group.gen_slots]

    def _rouge_entry(self, group: _Group, gens: list[str]) -> dict[str, Any]:
        items = [self.gen_items[slot] for slot in group.gen_slots]
        outs = self._clean_generations(group, gens)
        return rouge_metric([it["ground_truth"] for it in items], outs, "rougeL_recall",
                            inputs=[it["input_text"] for it in items])

    def _answer_text(self, slot: int) -> str:
        item = self.score_items[slot]
        ids = [t for t in item["labels"] if t != IGNORE_INDEX]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _mia(self, scores: list[ItemScore]) -> dict[str, Any]:
        if not any(name.startswith("mia_") for name in self.metrics):
            return {}
        k = self.config.mia_k
        forget, holdout = self.groups["forget"].score_slots["answer"], self.groups["holdout"].score_slots["answer"]
        attacks = {
            "mia_loss": lambda s: scores[s].avg_loss,
            "mia_zlib": lambda s: zlib_score(scores[s].avg_loss, self._answer_text(s)),
            "mia_min_k": lambda s: min_k_score(scores[s].token_log_probs, k),
            # min-k++ = min-k applied to the vocab-normalised z-scores (privacy.min_k_plus_plus_score)
            "mia_min_k_plus_plus": lambda s: min_k_score(scores[s].z_scores, k),
        }
        return {name: mia_result([fn(s) for s in forget], [fn(s) for s in holdout])
                for name, fn in attacks.items() if name in self.metrics}

    def _metrics(self, scores: list[ItemScore], gens: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        m = set(self.metrics)
        for g in self.groups.values():
            for suffix, kind in PROB_KINDS.items():
                name = f"{g.name}_{suffix}"
                if name not in m:
                    continue
                if kind == "gen":
                    out[name] = self._rouge_entry(g, gens)
                else:
                    out[name] = self._prob_entry(scores, g.score_slots[kind])
        loss = lambda slots: [scores[s].avg_loss for s in slots]  # noqa: E731
        lists = lambda slots: [[scores[j].avg_loss for j in s] for s in slots]  # noqa: E731
        if "forget_truth_ratio" in m:
            f = self.groups["forget"].score_slots
            out["forget_truth_ratio"] = truth_ratio_metric(loss(f["para"]), lists(f["pert"]), "closer_to_1_better")
        if "forget_quality" in m:
            model_tr = [r["score"] for r in out["forget_truth_ratio"]["value_by_index"].values()]
            ref = self.reference.truth_ratios if self.reference is not None else None
            if ref is not None and len(ref) != len(model_tr):
                raise DataError(self.reference.source, field="forget_truth_ratio", value=f"{len(ref)} items",
                                fix=f"the retain reference must be evaluated on the same split "
                                    f"({self.config.forget_split}, {len(model_tr)} items): use the retain model "
                                    f"without that forget split (e.g. retain90 for forget10)")
            out["forget_quality"] = {"agg_value": forget_quality(model_tr, ref)}
        if "retain_Truth_Ratio" in m:
            r = self.groups["retain"].score_slots
            out["retain_Truth_Ratio"] = truth_ratio_metric(loss(r["para"]), lists(r["pert"]), "true_better")
        for g in ("ra", "wf"):
            if f"{g}_Truth_Ratio" in m:
                s = self.groups[g].score_slots
                out[f"{g}_Truth_Ratio"] = truth_ratio_metric(loss(s["answer"]), lists(s["pert"]), "true_better")
            if f"{g}_Q_A_Prob_normalised" in m:
                s = self.groups[g].score_slots
                out[f"{g}_Q_A_Prob_normalised"] = probability_w_options(
                    [scores[i].prob for i in s["answer"]], [[scores[j].prob for j in p] for p in s["pert"]])
        if "forget_Q_A_gibberish" in m:
            texts = self._clean_generations(self.groups["forget"], gens)  # the texts ROUGE scores
            entry = gibberish_result(self.detector.score_many(texts), texts)
            out["forget_Q_A_gibberish"] = entry
            out["forget_Q_A_gibberish_rate"] = {"agg_value": entry["flagged_rate"]}
        for name in ("extraction_strength", "exact_memorization"):
            if name in m:
                slots = self.groups["forget"].score_slots["answer"]
                values = [scores[s].es if name == "extraction_strength" else scores[s].em for s in slots]
                out[name] = {"agg_value": mean_over_items(values),
                             "value_by_index": {str(i): {"score": v} for i, v in enumerate(values)}}
        out.update(self._mia(scores))
        if "privleak" in m:
            ref_auc = self.reference.mia_auc if self.reference is not None else None
            out["privleak"] = {"agg_value": privleak(out["mia_min_k"]["auc"], ref_auc)}
        if "model_utility" in m:
            inputs = {k: out[k]["agg_value"] for k in MODEL_UTILITY_INPUTS}
            out["model_utility"] = {"agg_value": model_utility(inputs)}
        return out


def evaluate_tofu(model: Any, tokenizer: Any, template: PromptTemplate, config: EvalConfig | None = None,
                  source: str | Path = "locuslab/TOFU", reference: RetainReference | None = None) -> dict[str, Any]:
    """One-shot TOFU evaluation (builds a TofuEvaluator and runs it once)."""
    return TofuEvaluator(tokenizer, template, config, source, reference).evaluate(model)


def summary_table(rows: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    """A plain-text table: one row per model name, one column per metric (aggregates)."""
    def fmt(v: Any) -> str:
        if v is None:
            return "None"
        if isinstance(v, float):
            return f"{v:.3g}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) else f"{v:.4f}"
        return str(v)

    header = ["model", *metrics]
    body = [[name, *(fmt(agg(res, m)) for m in metrics)] for name, res in rows.items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def agg(results: dict[str, Any], metric: str) -> Any:
    """The aggregate value of one metric of a results dict (None when absent): an OU entry's "agg_value", or the
    value itself where the results are flat numbers (lm-eval's, `wmdp_eval.LmEvalEvaluator.evaluate`)."""
    entry = results.get(metric)
    return entry.get("agg_value") if isinstance(entry, dict) else entry


