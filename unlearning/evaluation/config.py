"""Validated settings of an evaluation run (TOFU, MUSE, gibberish, relearning attack); unknown keys are refused.

    from unlearning.evaluation.config import EvalConfig, parse_config
    cfg = EvalConfig(forget_split="forget01", metrics=["forget_quality", "model_utility"])
    cfg = parse_config(EvalConfig, {"forget_split": "forget10", "max_new_tokens": 64}, where="sweep.yaml: eval")

Defaults are open-unlearning's (TOFU greedy max_new_tokens 200, min-k with k = 0.4; MUSE knowmem 32 /
verbmem 128 new tokens with OU's stopwords). `metrics: null` means every metric of the benchmark. The
batching knobs (`batch_tokens`, `max_batch_size`, `generation_batch_size`) change speed and memory only,
never the numbers beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unlearning.data.limits import MAX_LENGTH
from unlearning.data.tofu import FORGET_SPLITS, holdout_split_for
from unlearning.errors import ConfigError

HUB_GIBBERISH_MODEL = "madhurjindal/autonlp-Gibberish-Detector-492513457"

TOFU_METRICS: tuple[str, ...] = (
    "forget_quality", "forget_truth_ratio", "forget_Q_A_Prob", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob",
    "forget_Q_A_ROUGE", "forget_Q_A_gibberish", "model_utility",
    "retain_Q_A_Prob", "retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio",
    "ra_Q_A_Prob", "ra_Q_A_PERT_Prob", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
    "wf_Q_A_Prob", "wf_Q_A_PERT_Prob", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio",
    "extraction_strength", "exact_memorization",
    "mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak",
)
MUSE_METRICS: tuple[str, ...] = (
    "forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "forget_gibberish",
    "extraction_strength", "mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak",
)
# robustness (docs/lkf.md; `robust_eval.py` defines each): the worst case over a fact's question variants
# (TOFU: question + paraphrased_question; LKF: question + 15 paraphrases) and the forget metrics after the
# relearning attack (on a fine-tuned copy; measured on the forget facts that were not relearned)
ROBUST_WORST_METRICS: tuple[str, ...] = ("forget_Q_A_Prob_worst", "forget_Q_A_ROUGE_worst", "forget_leak_rate_worst")
ROBUST_RELEARN_METRICS: tuple[str, ...] = (
    "forget_Q_A_Prob_relearn", "forget_Q_A_ROUGE_relearn", "forget_leak_rate_relearn",
    "forget_Q_A_ROUGE_worst_relearn", "forget_leak_rate_worst_relearn", "forget_quality_relearn",
)
ROBUST_METRICS: tuple[str, ...] = ROBUST_WORST_METRICS + ROBUST_RELEARN_METRICS
# LKF (JensUn, `lkf_eval.py` defines each): the forget facts asked with their original question, the retain facts
# averaged over their question variants (JensUn's J_avg), plus the robustness metrics above
LKF_METRICS: tuple[str, ...] = (
    "forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_leak_rate", "forget_Q_A_gibberish", "retain_Q_A_Prob",
    "retain_Q_A_ROUGE", *(m for m in ROBUST_METRICS if m != "forget_quality_relearn"),
    "forget_J_P", "forget_J_ICR", "forget_J_W", "retain_J_avg",
)
# JensUn's judged scores (`lkf_jensun.py`; nmndeep/JensUn-Unlearning src/evals/worst_eval.py): opt-in, they
# generate again with JensUn's plain few-shot prompt (twice with ICR) and ask the judge about every answer
LKF_JUDGE_METRICS: tuple[str, ...] = ("forget_J_P", "forget_J_ICR", "forget_J_W", "retain_J_avg")
MUSE_STOPWORDS = ("\n\n", "\nQuestion", "Question:")
# short names of evaluator entries -> (the metric `metrics:` must select, the entry the evaluator reports); the
# gibberish metric reports the share of flagged forget generations as an extra entry beside its mean score
QA_ALIASES = {"gibberish_rate": ("forget_Q_A_gibberish", "forget_Q_A_gibberish_rate"),  # TOFU's and LKF's
              "forget_Q_A_gibberish_rate": ("forget_Q_A_gibberish", "forget_Q_A_gibberish_rate")}
MUSE_ALIASES = {"gibberish_rate": ("forget_gibberish", "forget_gibberish_rate"),
                "forget_gibberish_rate": ("forget_gibberish", "forget_gibberish_rate")}


def flat_metrics(results: Mapping[str, Any],
                 aliases: Mapping[str, tuple[str, str]] = QA_ALIASES) -> dict[str, float | None]:
    """Evaluator output (OU layout {metric: {"agg_value": x, ...}} or plain scalars) -> {metric: x}, plus the
    short names of `aliases` (the benchmark's: QA_ALIASES for TOFU and LKF, MUSE_ALIASES; gibberish_rate = the
    flagged share). Non-finite values become None."""
    import math

    out: dict[str, float | None] = {}
    for key, value in results.items():
        if isinstance(value, Mapping):
            value = value.get("agg_value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = float(value) if math.isfinite(value) else None
        elif value is None:
            out[str(key)] = None
    for alias, (_, entry) in aliases.items():
        if entry in out and alias not in out:
            out[alias] = out[entry]
    return out

_FORBID = ConfigDict(extra="forbid", frozen=True)

# Upper bounds of the token budgets (a value past them is a typo that would otherwise cost hours per evaluation):
# greedy generation runs max_new_tokens decoding steps for every forget question at every evaluation point, and
# reference answers are a few dozen tokens (open-unlearning: TOFU 200, MUSE knowmem 32 / verbmem 128).
MAX_NEW_TOKENS = 4096
# the hub gibberish detector is a 512-position classifier: a longer input fails inside the evaluation
MAX_GIBBERISH_LENGTH = 512


def _budget_fits(new_tokens: dict[str, int], max_length: int) -> None:
    """Every generation budget below MAX_NEW_TOKENS and within the tokenisation budget `max_length`."""
    for field, value in new_tokens.items():
        if value > MAX_NEW_TOKENS:
            raise ConfigError("eval", field=field, value=value,
                              fix=f"give at most {MAX_NEW_TOKENS}: greedy decoding runs that many steps per forget "
                                  "question at every evaluation point, and answers are a few dozen tokens "
                                  "(open-unlearning: 200)")
        if value > max_length:
            raise ConfigError("eval", field=field, value=value,
                              fix=f"give at most max_length ({max_length}): the answer is scored and compared "
                                  f"within max_length tokens (or raise max_length)")


def _check_metrics(value: list[str] | None, allowed: tuple[str, ...]) -> list[str] | None:
    if value is None:
        return None
    unknown = [m for m in value if m not in allowed]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; allowed: {', '.join(allowed)}")
    if not value:
        raise ValueError("give at least one metric, or null for all of them")
    return list(dict.fromkeys(value))


class GibberishConfig(BaseModel):
    """Which gibberish detector scores the forget-set generations."""

    model_config = _FORBID
    detector: Literal["offline", "hub"] = "offline"  # offline = rule-based, no download (gibberish.py)
    hub_model: str = HUB_GIBBERISH_MODEL  # hub id or local folder of the reference classifier
    threshold: float = Field(0.5, gt=0, lt=1)  # offline: flag when the clean score is below this
    max_length: int = Field(32, ge=1, le=MAX_GIBBERISH_LENGTH)  # hub: tokenizer truncation (OU: 32 TOFU, 512 MUSE)
    batch_size: int = Field(32, ge=1)  # hub: classifier batch size


class BatchingConfig(BaseModel):
    """Speed/memory knobs shared by every evaluator (never change the numbers beyond float rounding)."""

    model_config = _FORBID
    batch_tokens: int = Field(8192, ge=1)  # teacher-forced scoring: padded tokens per batch
    max_batch_size: int = Field(64, ge=1)  # teacher-forced scoring: sequences per batch
    generation_batch_size: int = Field(64, ge=1)  # greedy generation: prompts per batch
    share_prefix: bool = True  # score a question's answers in one packed row (prompt computed once)
    attention_from_pad_id: bool = False  # True = OU's mask (input_ids != pad), see data/collators.py


class EvalConfig(BatchingConfig):
    """TOFU evaluation (docs/methods.md, the evaluation)."""

    forget_split: str = "forget10"
    holdout_split: str | None = None  # default: the holdout of the same size (holdout10 for forget10)
    question_key: str = "question"  # forget-set question field; "paraphrased_question" for robustness
    metrics: list[str] | None = None  # None = all TOFU_METRICS
    max_new_tokens: int = Field(200, ge=1)
    stopwords: list[str] = Field(default_factory=list)
    max_length: int = Field(512, ge=8, le=MAX_LENGTH)  # tokenisation truncation of QA items (OU default 512)
    mia_k: float = Field(0.4, gt=0, le=1)
    gibberish: GibberishConfig = Field(default_factory=GibberishConfig)
    robustness: "RobustnessConfig" = Field(default_factory=lambda: RobustnessConfig())

    @field_validator("forget_split")
    @classmethod
    def _forget(cls, value: str) -> str:
        if value not in FORGET_SPLITS:
            raise ValueError(f"use one of {', '.join(FORGET_SPLITS)}")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        return _check_metrics(value, TOFU_METRICS + ROBUST_METRICS)

    @model_validator(mode="after")
    def _budgets(self) -> "EvalConfig":
        _budget_fits({"max_new_tokens": self.max_new_tokens}, self.max_length)
        return self

    def holdout(self) -> str:
        return self.holdout_split or holdout_split_for(self.forget_split)

    def selected(self) -> tuple[str, ...]:
        return tuple(self.metrics) if self.metrics is not None else TOFU_METRICS


class MuseEvalConfig(BatchingConfig):
    """MUSE evaluation (docs/muse.md): knowmem with in-context examples, verbmem, privleak."""

    metrics: list[str] | None = None  # None = all MUSE_METRICS
    knowmem_max_new_tokens: int = Field(32, ge=1)
    verbmem_max_new_tokens: int = Field(128, ge=1)
    stopwords: list[str] = Field(default_factory=lambda: list(MUSE_STOPWORDS))  # knowmem only
    max_length: int = Field(2048, ge=8, le=MAX_LENGTH)  # raw-text truncation (verbmem, privleak)
    mia_k: float = Field(0.4, gt=0, le=1)
    gibberish: GibberishConfig = Field(default_factory=lambda: GibberishConfig(max_length=512))

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        return _check_metrics(value, MUSE_METRICS)

    @model_validator(mode="after")
    def _budgets(self) -> "MuseEvalConfig":
        _budget_fits({"knowmem_max_new_tokens": self.knowmem_max_new_tokens,
                      "verbmem_max_new_tokens": self.verbmem_max_new_tokens}, self.max_length)
        return self

    def selected(self) -> tuple[str, ...]:
        return tuple(self.metrics) if self.metrics is not None else MUSE_METRICS


# Upper bounds of the relearning attack's cost (it runs on a copy of the model at every attacked evaluation point)
MAX_RELEARN_STEPS = 1000
MAX_RELEARN_ROWS = 100_000


# JensUn's relearning recipe: its `GradLearn` trainer (src/trainer/unlearn/grad_learn.py: plain NLL on the "retain"
# side of the forget-anchored ForgetRetainDataset, src/data/unlearn.py) with configs/trainer/GradLearn.yaml ->
# finetune.yaml's arguments: lr 1e-5, per-device batch 8, gradient accumulation 4, 10 epochs, weight decay 0.0,
# HF Trainer's default linear decay without warm-up (nmndeep/JensUn-Unlearning @ 9d0cfd5)
JENSUN_RELEARN = {"lr": 1e-5, "batch_size": 8, "grad_accum": 4, "epochs": 10, "weight_decay": 0.0, "rows": None}


class RelearnConfig(BaseModel):
    """Relearning attack: plain NLL fine-tuning of a COPY of the model, then the forget facts are asked again.

    recipe "steps" (the default, a cheap attack for sweeps; not JensUn's): `steps` AdamW steps of `batch_size`
    rows drawn from `rows` QA rows, constant lr. recipe "jensun": JensUn's `GradLearn` (see JENSUN_RELEARN, filled
    in for every field not given): `epochs` epochs over a forget-anchored sampler (an epoch has as many items as
    the forget set, each a uniformly drawn relearning row), micro-batches of `batch_size`, one AdamW step per
    `grad_accum` micro-batches (and at an epoch's end), lr decaying linearly to 0; rows null = the whole set.

    source: which rows are relearned: "forget" (a seeded sample of `rows` forget facts; the attack is measured
    on the others, Hu et al.'s relearning of a forget subset), "retain" (a sample of the retain split: benign
    fine-tuning), "relearn" (LKF's disjoint relearn_standard set); null = the benchmark's default (TOFU forget,
    LKF relearn). every: attack every k-th evaluation point (k = every, counted in `eval.every` steps from the
    start) and always the last one; null = only the start (the target) and the last point. Its cost per attacked
    point: `steps` forward/backward passes of `batch_size` rows on a copy, then one forget-set evaluation."""

    model_config = _FORBID
    steps: int = Field(10, ge=1)
    lr: float = Field(1e-4, gt=0, le=1.0)
    batch_size: int = Field(4, ge=1, le=1024)
    rows: int | None = Field(20, ge=1)
    source: Literal["forget", "retain", "relearn"] | None = None
    every: int | None = Field(None, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    max_length: int = Field(512, ge=8, le=MAX_LENGTH)
    seed: int = 0
    recipe: Literal["steps", "jensun"] = "steps"
    grad_accum: int = Field(1, ge=1, le=1024)  # recipe jensun only
    epochs: int = Field(10, ge=1, le=100)  # recipe jensun only

    @model_validator(mode="before")
    @classmethod
    def _recipe_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("recipe") == "jensun":
            return {**JENSUN_RELEARN, **data}
        return data

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        if v > MAX_RELEARN_STEPS:
            raise ValueError(f"give at most {MAX_RELEARN_STEPS}: the attack trains a copy of the model that many "
                             "steps at every attacked evaluation point (JensUn-style attacks use tens)")
        return v

    @field_validator("rows")
    @classmethod
    def _rows(cls, v: int | None) -> int | None:
        if v is not None and v > MAX_RELEARN_ROWS:
            raise ValueError(f"give at most {MAX_RELEARN_ROWS}: a relearning subset is small (tens of facts)")
        return v


class RobustnessConfig(BaseModel):
    """Settings of the robustness metrics (ROBUST_METRICS), under `eval.settings.robustness`.

    leak_threshold: a fact leaks when the ROUGE-L recall of the model's greedy answer reaches it (the offline
    stand-in for JensUn's LLM judge). relearn: the attack (RelearnConfig), run only when a *_relearn metric is
    selected."""

    model_config = _FORBID
    leak_threshold: float = Field(0.5, gt=0, le=1)
    relearn: RelearnConfig = Field(default_factory=RelearnConfig)


EvalConfig.model_rebuild()  # its `robustness` field names RobustnessConfig, defined after it


class JudgeConfig(BaseModel):
    """Who says whether an LKF answer holds the fact (JensUn: a Gemini LLM judge, not reproducible offline).

    kind "rouge" (the offline stand-in): Yes when the answer's ROUGE-L recall against the ground truth reaches
    `threshold`. kind "model": a local causal LM (`model`: hub id or folder) is asked, per answer, whether the
    response holds every element of the ground truth relevant to the question (the rule of JensUn's
    src/evals/judge_prompt.txt; `prompt_file` gives that file, or any instruction text, verbatim) and its greedy
    reply starting with "yes" is a Yes. kind "callable": `callable: "module:function"`, called as
    function(questions, ground_truths, responses) -> a list of booleans (or "yes"/"no" strings), one per answer."""

    model_config = _FORBID
    kind: Literal["rouge", "model", "callable"] = "rouge"
    threshold: float = Field(0.5, gt=0, le=1)
    model: str | None = None
    callable: str | None = None
    prompt_file: str | None = None
    max_new_tokens: int = Field(3, ge=1, le=64)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> "JudgeConfig":
        if self.kind == "model" and not self.model:
            raise ValueError("judge kind 'model' needs `model`: a hub id or a local folder of a causal LM")
        if self.kind == "callable" and (not self.callable or ":" not in self.callable):
            raise ValueError("judge kind 'callable' needs `callable: module:function`")
        return self


class LkfEvalConfig(BatchingConfig):
    """LKF evaluation (`lkf_eval.py`): forget facts of `forget_eval_para` (16 question variants each), retain facts
    of `retain_eval_para` (the first `retain_limit` rows, each with its variants; JensUn uses 400), greedy answers
    of at most `max_new_tokens` (JensUn: 50).

    prompt: "template" asks through the model's own prompt template (chat template for instruct models);
    "jensun" uses JensUn's plain few-shot prompt (src/evals/utils.py TEMP_P + "QUESTION:{q}, \\n ANSWER:", no
    chat template, the answer is the text after the last "ANSWER:"). The judged scores (LKF_JUDGE_METRICS: J_P,
    J_ICR with `icr_examples` random retain_standard pairs in the prompt, J_W over both, retain J_avg) always use
    JensUn's prompt and the `judge`."""

    metrics: list[str] | None = None  # None = every LKF metric but the relearning attack's and the judged ones
    max_new_tokens: int = Field(50, ge=1)
    max_length: int = Field(512, ge=8, le=MAX_LENGTH)
    retain_limit: int | None = Field(400, ge=1)
    prompt: Literal["template", "jensun"] = "template"
    icr_examples: int = Field(3, ge=1, le=32)
    seed: int = 42  # JensUn's seed_everything(42): the ICR examples' draw
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    gibberish: GibberishConfig = Field(default_factory=GibberishConfig)
    robustness: RobustnessConfig = Field(default_factory=RobustnessConfig)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        return _check_metrics(value, LKF_METRICS)

    @model_validator(mode="after")
    def _budgets(self) -> "LkfEvalConfig":
        _budget_fits({"max_new_tokens": self.max_new_tokens}, self.max_length)
        return self

    def selected(self) -> tuple[str, ...]:
        if self.metrics is not None:
            return tuple(self.metrics)
        return tuple(m for m in LKF_METRICS if not m.endswith("_relearn") and m not in LKF_JUDGE_METRICS)

C = TypeVar("C", bound=BaseModel)


def parse_config(cls: type[C], data: Mapping[str, Any] | None, where: str = "eval config") -> C:
    """Validate a mapping into `cls`; the first problem becomes a ConfigError naming the field and fix."""
    try:
        return cls.model_validate(dict(data or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError) and inner.field:  # a cross-field check names its own field
            raise ConfigError(where, field=inner.field, value=inner.value, fix=inner.fix) from None
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<config>"
        fix = err.get("msg", "invalid value").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            owner: Any = cls
            for part in err.get("loc", ())[:-1]:  # the nested section the key is in (e.g. robustness.relearn)
                field_info = owner.model_fields.get(part) if isinstance(owner, type) else None
                ann = field_info.annotation if field_info is not None else None
                owner = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else owner
            fix = f"unknown key; allowed keys: {', '.join(owner.model_fields)}"
        raise ConfigError(where, field=loc, value=err.get("input"), fix=fix) from None
