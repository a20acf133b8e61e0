"""The LKF evaluator (JensUn's "lesser-known facts", docs/lkf.md) without an LLM judge, and its robustness metrics.

    ev = LkfEvaluator(tokenizer, template, LkfEvalConfig(metrics=[...]), source="/path/lkf-mini")  # or a hub prefix
    results = ev.evaluate(model, epoch)      # {metric: {"agg_value": ...}} (OU layout), like TofuEvaluator
    ev.write(results, "out/")                # LKF_EVAL.json + LKF_SUMMARY.json

What is measured ("recall" = ROUGE-L recall of the greedy answer against the answer, "prob" = the answer's
per-token probability under teacher forcing; JensUn's judge says Yes when an answer holds the ground truth, the
offline stand-in is recall >= `robustness.leak_threshold`):

* forget facts = `forget_eval_para` (the forget_standard facts with 15 paraphrases each), one scoring and one
  generation pass over every (fact, variant): `forget_Q_A_Prob`, `forget_Q_A_ROUGE`, `forget_leak_rate` on the
  original question; `forget_Q_A_Prob_worst`, `forget_Q_A_ROUGE_worst`, `forget_leak_rate_worst` (JensUn's J_P)
  over the 16 variants (`robust_eval.py` defines them); `forget_Q_A_gibberish` (+ `_rate`) on the
  original-question answers;
* retain facts = the first `retain_limit` rows of `retain_eval_para`, every variant: `retain_Q_A_Prob`,
  `retain_Q_A_ROUGE` = the mean over rows and variants (JensUn's J_avg, the utility the trade-off is against);
* the relearning attack (`*_relearn`, opt-in): a copy fine-tuned on `rows` rows of `relearn_standard` (LKF's
  disjoint set; `source: forget | retain` also work), then the forget facts again.

LKF has no retain model, so there is no forget_quality. `prompt: template` (default) asks through the model's own
template; `prompt: jensun` asks as JensUn does (its plain few-shot prompt, `lkf_jensun.py`). JensUn's judged
scores (`forget_J_P`, `forget_J_ICR`, `forget_J_W`, `retain_J_avg`; opt-in) always use JensUn's prompt and the
configured `judge` (ROUGE-L recall stand-in, a local causal LM, or a `module:function`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearning.data.lkf import load_lkf, lkf_question_variants
from unlearning.data.templates import PromptTemplate
from unlearning.evaluation.config import (LKF_JUDGE_METRICS, ROBUST_RELEARN_METRICS, ROBUST_WORST_METRICS,
                                          LkfEvalConfig)
from unlearning.evaluation.gibberish import build_detector, gibberish_result
from unlearning.evaluation.robust_eval import RobustEvaluator, relearn_split
from unlearning.evaluation.robustness import paraphrase_worst_case
from unlearning.metrics.report import write_report

FORGET_SPLIT, RETAIN_SPLIT, RELEARN_SPLIT = "forget_eval_para", "retain_eval_para", "relearn_standard"
RETAIN_POOL = "retain_standard"


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


class LkfEvaluator:
    """Prepared LKF evaluation for one tokenizer/template/config (see the module docstring)."""

    def __init__(self, tokenizer: Any, template: PromptTemplate, config: LkfEvalConfig | None = None,
                 source: str | Path | None = None, device: str = "cpu",
                 attack_at: Callable[[float], bool] | None = None):
        from unlearning.evaluation.lkf_jensun import JENSUN_TEMPLATE, build_judge

        self.config = config or LkfEvalConfig()
        self.train_template = template  # the relearning attack trains in the model's own format
        if self.config.prompt == "jensun":
            template = JENSUN_TEMPLATE
        self.tokenizer, self.template, self.device = tokenizer, template, device
        self.source = source
        chosen = set(self.config.selected())
        self.metrics = chosen
        self.forget = load_lkf(FORGET_SPLIT, source)
        self.retain = load_lkf(RETAIN_SPLIT, source)[: self.config.retain_limit] \
            if chosen & {"retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_J_avg"} else []
        self.judged = [m for m in LKF_JUDGE_METRICS if m in chosen]
        self.judge = build_judge(self.config.judge, device) if self.judged else None
        self.icr_pool = load_lkf(RETAIN_POOL, source) if chosen & {"forget_J_ICR", "forget_J_W"} else []
        self.detector = None
        if "forget_Q_A_gibberish" in chosen:
            texts = [t for r in self.forget + self.retain for t in lkf_question_variants(r) + [r["answer"]]]
            self.detector = build_detector(self.config.gibberish, texts, device=device)
        self.robust = None
        relearn = [m for m in self.config.selected() if m in ROBUST_RELEARN_METRICS]
        if relearn:
            rob = self.config.robustness
            kind = rob.relearn.source or "relearn"
            pool = {"relearn": RELEARN_SPLIT, "retain": RETAIN_POOL}.get(kind)
            rows, measured = relearn_split(len(self.forget), rob, kind, load_lkf(pool, source) if pool else [],
                                           self.forget)
            self.robust = RobustEvaluator(tokenizer, template, rob, relearn, self.forget, lkf_question_variants,
                                          rows, measured, max_new_tokens=self.config.max_new_tokens,
                                          max_length=self.config.max_length, batching=self._batching(),
                                          attack_at=attack_at, train_template=self.train_template)
        self.timings: dict[str, float] = {}

    def _batching(self) -> dict[str, int]:
        c = self.config
        out: dict[str, Any] = {"batch_tokens": c.batch_tokens, "max_batch_size": c.max_batch_size,
                               "generation_batch_size": c.generation_batch_size}
        if c.prompt == "jensun":
            out["answer_after"] = "ANSWER:"  # JensUn keeps the text after the last "ANSWER:"
        return out

    def _pass(self, model: Any, rows: Sequence[dict], all_variants: bool) -> dict[str, Any]:
        variants = lkf_question_variants if all_variants else (lambda r: [r["question"]])
        return paraphrase_worst_case(model, self.tokenizer, self.template, rows, variants,
                                     max_new_tokens=self.config.max_new_tokens,
                                     leak_threshold=self.config.robustness.leak_threshold,
                                     max_length=self.config.max_length, **self._batching())

    def evaluate(self, model: Any, epoch: float | None = None) -> dict[str, Any]:
        """Every selected metric (OU layout); the relearning attack at the points `attack_at` names."""
        m, thr = self.metrics, self.config.robustness.leak_threshold
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        res = self._pass(model, self.forget, all_variants=bool(m & set(ROBUST_WORST_METRICS)))
        probs = res["forget_Q_A_Prob_worst"]["value_by_index"]
        rouge = res["forget_Q_A_ROUGE_worst"]["value_by_index"]
        first_p = [probs[str(i)]["probs"][0] for i in range(len(self.forget))]
        first_r = [rouge[str(i)]["recalls"][0] for i in range(len(self.forget))]
        entries = {
            "forget_Q_A_Prob": {"agg_value": _mean(first_p)},
            "forget_Q_A_ROUGE": {"agg_value": _mean(first_r),
                                 "value_by_index": {str(i): {"rougeL_recall": r, "generation":
                                                             rouge[str(i)]["generations"][0]}
                                                    for i, r in enumerate(first_r)}},
            "forget_leak_rate": {"agg_value": _mean([r >= thr for r in first_r]), "threshold": thr},
            **{name: res[name] for name in ROBUST_WORST_METRICS},
        }
        out.update({k: v for k, v in entries.items() if k in m})
        if "forget_Q_A_gibberish" in m:
            texts = [rouge[str(i)]["generations"][0] for i in range(len(self.forget))]
            entry = gibberish_result(self.detector.score_many(texts), texts)
            out["forget_Q_A_gibberish"] = entry
            out["forget_Q_A_gibberish_rate"] = {"agg_value": entry["flagged_rate"]}
        t1 = time.perf_counter()
        if self.retain:
            ret = self._pass(model, self.retain, all_variants=True)
            all_p = [p for rec in ret["forget_Q_A_Prob_worst"]["value_by_index"].values() for p in rec["probs"]]
            all_r = [r for rec in ret["forget_Q_A_ROUGE_worst"]["value_by_index"].values() for r in rec["recalls"]]
            if "retain_Q_A_Prob" in m:
                out["retain_Q_A_Prob"] = {"agg_value": _mean(all_p), "answers": len(all_p)}
            if "retain_Q_A_ROUGE" in m:
                out["retain_Q_A_ROUGE"] = {"agg_value": _mean(all_r), "answers": len(all_r)}
        if self.judged:
            from unlearning.data.lkf import lkf_question_variants as variants
            from unlearning.evaluation.lkf_jensun import jensun_scores

            c = self.config
            out.update(jensun_scores(model, self.tokenizer, self.forget, self.retain, self.icr_pool, self.judge,
                                     variants, self.judged, max_new_tokens=c.max_new_tokens,
                                     icr_examples=c.icr_examples, seed=c.seed, batch_size=c.generation_batch_size))
        t2 = time.perf_counter()
        if self.robust is not None:
            out.update(self.robust.evaluate(model, epoch))
        self.timings.update(forget=t1 - t0, retain=t2 - t1, relearn=time.perf_counter() - t2)
        return out

    def write(self, results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
        """LKF_EVAL.json + LKF_SUMMARY.json in out_dir (OU layout)."""
        return write_report(out_dir, results, benchmark="LKF")
