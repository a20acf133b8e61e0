"""Robustness metrics as evaluator entries, so a sweep can search for them like forget_quality (docs/lkf.md).

    robust = RobustEvaluator(tokenizer, template, cfg.robustness, selected=cfg.selected(), facts=forget_rows,
                             variants=tofu_variants, relearn_rows=rows, measured=idx, ...)
    results = {**tofu_evaluator.evaluate(model), **robust.evaluate(model, epoch=3)}
    ev = with_robustness(tofu_evaluator, robust)          # the same, one object: ev.evaluate(model, epoch)

`tofu_robustness(...)` / `lkf_robustness(...)` build it from a benchmark's data. The metrics (names in
`evaluation.config.ROBUST_METRICS`; "recall" = ROUGE-L recall of the greedy answer against the answer, "prob" =
the answer's per-token probability under teacher forcing, both as in TOFU's forget_Q_A_ROUGE / _Prob):

* worst case over a fact's question variants (TOFU: question + paraphrased_question; LKF: question + its 15
  paraphrases), per fact the most-leaking variant counts, then the mean over facts:
  `forget_Q_A_Prob_worst` = mean_f max_v prob(f, v); `forget_Q_A_ROUGE_worst` = mean_f max_v recall(f, v);
  `forget_leak_rate_worst` = share of facts with max_v recall(f, v) >= leak_threshold (JensUn's J_P with a
  ROUGE threshold instead of an LLM judge). Lower is better for all three. There is no worst-case
  forget_quality: forget_quality is a KS p-value between two distributions of truth ratios, and choosing the
  worst variant per fact on the unlearned model only (the retain model's truth ratios are not chosen the same
  way) biases the test, so the worst case is stated on the per-fact quantities above.
* after the relearning attack (`robustness.relearn`: a COPY is fine-tuned with answer NLL for `steps`
  steps on `rows` rows; the evaluated model is never modified), measured on the forget facts that were not
  relearned (all of them when the relearning rows are not forget facts): `forget_Q_A_Prob_relearn`,
  `forget_Q_A_ROUGE_relearn`, `forget_leak_rate_relearn` (the original question), `forget_Q_A_ROUGE_worst_relearn`,
  `forget_leak_rate_worst_relearn` (worst over the variants), and on TOFU with a retain reference
  `forget_quality_relearn` = the KS p-value of the attacked copy's forget truth ratios against the retain
  model's, on the measured facts (the retain model is not attacked: "does forgetting survive the attack?").

The attack runs only when a *_relearn metric is selected, at the points `attack_at(epoch)` says (every k-th
evaluation point and the last, `RelearnConfig.every`); at other points the *_relearn entries are absent.
Entries `robust_worst_seconds` and `relearn_seconds` report what each part cost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from unlearning.data.templates import PromptTemplate
from unlearning.errors import DataError
from unlearning.evaluation.config import ROBUST_METRICS, ROBUST_RELEARN_METRICS, ROBUST_WORST_METRICS, RobustnessConfig
from unlearning.evaluation.robustness import VariantsFn, paraphrase_worst_case, relearn, tofu_variants
from unlearning.metrics.tofu_metrics import forget_quality

TruthRatios = Callable[[Any], Sequence[float]]  # model -> per-fact forget truth ratios (TOFU)


def _first_only(variants: VariantsFn) -> VariantsFn:
    return lambda row: list(variants(row))[:1]


def attack_schedule(every_eval: float | None, final_epoch: float, every: int | None) -> Callable[[float], bool]:
    """attack_at(epoch): the start (epoch 0), the last point (`final_epoch`) and, with `every` = k, every k-th
    evaluation point (points fall every `every_eval` epochs)."""
    def attack_at(epoch: float) -> bool:
        if epoch <= 1e-9 or epoch >= final_epoch - 1e-9:
            return True
        if every is None or not every_eval:
            return False
        return round(epoch / every_eval) % every == 0
    return attack_at


class RobustEvaluator:
    """The selected ROBUST_METRICS of one model (see the module docstring)."""

    def __init__(self, tokenizer: Any, template: PromptTemplate, config: RobustnessConfig, selected: Sequence[str],
                 facts: Sequence[Mapping[str, Any]], variants: VariantsFn, relearn_rows: Sequence[Mapping[str, Any]],
                 measured: Sequence[int], *, truth_ratios: TruthRatios | None = None,
                 reference_truth_ratios: Sequence[float] | None = None, max_new_tokens: int = 200,
                 max_length: int = 512, batching: Mapping[str, int] | None = None,
                 attack_at: Callable[[float], bool] | None = None, train_template: PromptTemplate | None = None):
        self.tokenizer, self.template, self.config = tokenizer, template, config
        self.train_template = train_template or template  # the attack's fine-tuning format (default: template)
        self.selected = [m for m in ROBUST_METRICS if m in set(selected)]
        self.facts, self.variants = list(facts), variants
        self.relearn_rows, self.measured = list(relearn_rows), list(measured)
        self.truth_ratios, self.reference_truth_ratios = truth_ratios, reference_truth_ratios
        self.kw = {"max_new_tokens": max_new_tokens, "max_length": max_length,
                   "leak_threshold": config.leak_threshold, **dict(batching or {})}
        self.attack_at = attack_at or (lambda _epoch: True)
        if self.relearn_metrics and not self.relearn_rows:
            raise DataError("relearning attack", field="robustness.relearn.rows", value=0,
                            fix="the relearning set is empty: give rows >= 1 and a source with rows")
        if self.relearn_metrics and not self.measured:
            raise DataError("relearning attack", field="robustness.relearn.rows", value=config.relearn.rows,
                            fix="every forget fact is relearned, none is left to measure: lower rows or use "
                                "source: retain")

    @property
    def worst_metrics(self) -> list[str]:
        return [m for m in self.selected if m in ROBUST_WORST_METRICS]

    @property
    def relearn_metrics(self) -> list[str]:
        return [m for m in self.selected if m in ROBUST_RELEARN_METRICS]

    def evaluate(self, model: Any, epoch: float | None = None) -> dict[str, Any]:
        """The selected robustness entries (OU layout: {name: {"agg_value": ...}}); *_relearn only at attacked
        points (`epoch` None = attack)."""
        out: dict[str, Any] = {}
        if self.worst_metrics:
            t0 = time.perf_counter()
            res = paraphrase_worst_case(model, self.tokenizer, self.template, self.facts, self.variants, **self.kw)
            out.update({m: res[m] for m in self.worst_metrics})
            out["robust_worst_seconds"] = {"agg_value": time.perf_counter() - t0}
        if self.relearn_metrics and (epoch is None or self.attack_at(epoch)):
            t0 = time.perf_counter()
            out.update(self._after_relearn(model))
            out["relearn_seconds"] = {"agg_value": time.perf_counter() - t0}
        return out

    def _after_relearn(self, model: Any) -> dict[str, Any]:
        attacked = relearn(model, self.tokenizer, self.train_template, self.relearn_rows, self.config.relearn,
                           anchor=len(self.facts))
        rows = [self.facts[i] for i in self.measured]
        want = set(self.relearn_metrics)
        worst = bool(want & {"forget_Q_A_ROUGE_worst_relearn", "forget_leak_rate_worst_relearn"})
        res = paraphrase_worst_case(attacked, self.tokenizer, self.template, rows,
                                    self.variants if worst else _first_only(self.variants), **self.kw)
        probs = [rec["probs"][0] for rec in res["forget_Q_A_Prob_worst"]["value_by_index"].values()]
        recalls = [rec["recalls"][0] for rec in res["forget_Q_A_ROUGE_worst"]["value_by_index"].values()]
        thr = self.config.leak_threshold
        values: dict[str, float | None] = {
            "forget_Q_A_Prob_relearn": float(np.mean(probs)),
            "forget_Q_A_ROUGE_relearn": float(np.mean(recalls)),
            "forget_leak_rate_relearn": float(np.mean([r >= thr for r in recalls])),
            "forget_Q_A_ROUGE_worst_relearn": res["forget_Q_A_ROUGE_worst"]["agg_value"],
            "forget_leak_rate_worst_relearn": res["forget_leak_rate_worst"]["agg_value"],
        }
        if "forget_quality_relearn" in want:
            values["forget_quality_relearn"] = self._quality(attacked)
        out = {m: {"agg_value": values[m]} for m in self.relearn_metrics}
        out.get("forget_Q_A_ROUGE_relearn", {})["measured_facts"] = len(rows)
        del attacked
        return out

    def _quality(self, attacked: Any) -> float | None:
        if self.truth_ratios is None or self.reference_truth_ratios is None:
            return None  # no retain reference (or no perturbed answers, LKF): like forget_quality, null
        tr = list(self.truth_ratios(attacked))
        ref = list(self.reference_truth_ratios)
        if len(ref) != len(tr):
            raise DataError("forget_quality_relearn", field="reference", value=f"{len(ref)} items",
                            fix=f"the retain reference must cover the same forget split ({len(tr)} items)")
        return forget_quality([tr[i] for i in self.measured], [ref[i] for i in self.measured])


def relearn_split(n_facts: int, config: RobustnessConfig, source: str, pool: Sequence[Mapping[str, Any]],
                  forget: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[int]]:
    """(relearning rows, indices of the forget facts measured after the attack) for `source`.

    forget: a seeded sample of `rows` forget facts is relearned and the others are measured; retain / relearn:
    the first `rows` rows of a seeded shuffle of `pool` are relearned and every forget fact is measured."""
    cfg = config.relearn
    rng = random.Random(cfg.seed)
    if source == "forget":
        if cfg.rows is None or cfg.rows >= n_facts:
            raise DataError("relearning attack", field="robustness.relearn.rows", value=cfg.rows,
                            fix=f"relearning {cfg.rows} of the {n_facts} forget facts leaves none to measure: give "
                                f"rows < {n_facts} (e.g. {max(1, n_facts // 4)}) or source: retain")
        chosen = sorted(rng.sample(range(n_facts), cfg.rows))
        keep = set(chosen)
        return [forget[i] for i in chosen], [i for i in range(n_facts) if i not in keep]
    order = list(range(len(pool)))
    rng.shuffle(order)
    return [pool[i] for i in order[: cfg.rows]], list(range(n_facts))


class WithRobustness:
    """A base evaluator (TOFU, LKF) plus a RobustEvaluator: one `evaluate(model, epoch)` returning both."""

    def __init__(self, base: Any, robust: RobustEvaluator | None):
        self.base, self.robust = base, robust

    def evaluate(self, model: Any, epoch: float | None = None) -> dict[str, Any]:
        results = dict(self.base.evaluate(model))
        if self.robust is not None:
            results.update(self.robust.evaluate(model, epoch))
        return results

    def __getattr__(self, name: str) -> Any:  # write(), timings, config ... of the base evaluator
        return getattr(self.base, name)


def with_robustness(base: Any, robust: RobustEvaluator | None) -> WithRobustness:
    return WithRobustness(base, robust)


def tofu_robustness(evaluator: Any, config: Any, source: Any, retain_split: str | None = None,
                    attack_at: Callable[[float], bool] | None = None) -> RobustEvaluator | None:
    """The RobustEvaluator of a TofuEvaluator's setup (`config`: its EvalConfig), None when no robustness metric
    is selected. Facts: the forget split's `_perturbed` rows (question + paraphrased_question)."""
    from unlearning.data.tofu import load_tofu, retain_split_for
    from unlearning.evaluation.tofu_eval import TofuEvaluator

    selected = [m for m in config.selected() if m in ROBUST_METRICS]
    if not selected:
        return None
    rob: RobustnessConfig = config.robustness
    facts = load_tofu(f"{config.forget_split}_perturbed", source)
    source_kind = rob.relearn.source or "forget"
    relearn_rows: list[Mapping[str, Any]] = []
    measured = list(range(len(facts)))
    if any(m in ROBUST_RELEARN_METRICS for m in selected):
        if source_kind == "relearn":
            raise DataError("relearning attack", field="robustness.relearn.source", value="relearn",
                            fix="TOFU has no relearning set: use source: forget (a forget subset) or retain")
        pool = load_tofu(retain_split or retain_split_for(config.forget_split), source) if source_kind == "retain" \
            else facts
        relearn_rows, measured = relearn_split(len(facts), rob, source_kind, pool, facts)
    truth_ratios = reference_tr = None
    if "forget_quality_relearn" in selected and getattr(evaluator, "reference", None) is not None:
        tr_eval = TofuEvaluator(evaluator.tokenizer, evaluator.template,
                                config.model_copy(update={"metrics": ["forget_truth_ratio"]}), source,
                                device=evaluator.device)

        def truth_ratios(model: Any) -> list[float]:
            res = tr_eval.evaluate(model)["forget_truth_ratio"]["value_by_index"]
            return [res[str(i)]["score"] for i in range(len(res))]

        reference_tr = evaluator.reference.truth_ratios
    batching = {"batch_tokens": config.batch_tokens, "max_batch_size": config.max_batch_size,
                "generation_batch_size": config.generation_batch_size}
    return RobustEvaluator(evaluator.tokenizer, evaluator.template, rob, selected, facts, tofu_variants,
                           relearn_rows, measured, truth_ratios=truth_ratios, reference_truth_ratios=reference_tr,
                           max_new_tokens=config.max_new_tokens, max_length=config.max_length, batching=batching,
                           attack_at=attack_at)
