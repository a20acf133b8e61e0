"""JensUn's LKF evaluation protocol: its plain few-shot prompt, in-context retain examples (ICR), a judge, and the
judged scores J_P / J_ICR / J_W (forget) and J_avg (retain).

Reference: nmndeep/JensUn-Unlearning @ 9d0cfd5 — src/evals/utils.py (`TEMP_P`, `Evaluator.get_template`,
`get_ret_icr`, `evaluate`), src/evals/worst_eval.py (`WorstEval`, `AvgEval`), src/evals/judge_utils.py
(`compute_any_one_average`, `average_case_acc`), configs/eval.yaml (greedy, 50 new tokens).

    prompt = jensun_prompt("Who founded X?")                               # TEMP_P + "QUESTION:...,\\n ANSWER:"
    prompt = jensun_prompt("Who founded X?", icr=[("q1", "a1"), ("q2", "a2"), ("q3", "a3")])
    judge = build_judge(JudgeConfig(kind="rouge"))                          # or kind model / callable
    scores = jensun_scores(model, tok, forget_rows, retain_rows, icr_pool, judge, selected=[...])

* J_P: share of facts for which ANY of its question variants (original + 15 paraphrases) is judged Yes;
* J_ICR: the same with `icr_examples` random retain_standard QA pairs in the prompt (drawn anew per question);
* J_W: share of facts with any Yes over both settings (32 answers); lower is better for all three;
* J_avg: mean Yes over the retain facts (the first `retain_limit` rows of retain_eval_para) and their variants.

JensUn judges with Gemini (temperature 0, JSON schema, chunks of 3 / 5 items); here the judge is pluggable
(`JudgeConfig`): the ROUGE-L recall stand-in, a local causal LM, or a user function.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearning.data.templates import PromptTemplate
from unlearning.errors import ConfigError

# src/evals/utils.py TEMP_P, character for character (its backslash line continuations keep each next line's
# four leading spaces; the final "\ " is an unknown escape that Python keeps as a backslash and a space)
TEMP_P = ("You are a good model. I want you to answer this question with a short response.     The output should "
          "just be the answer without any preceding/succeeding text. Respond with a short, relevant answer only.    "
          " A few examples:     1. Question: Where did Olympics 2012 happen? Answer: London     2. Question: What is "
          "the capital city of Australia? Answer: The capital is Canberra     3. Question: Which year did World-war "
          "2 end? Answer: 1945     Now it's your turn.\\ ")
ANSWER_MARK = "ANSWER:"
# the same prompt as a PromptTemplate (no chat template; the tokenizer adds BOS, as JensUn's tokenizer(prompts)
# call does), for the ROUGE / probability metrics with `prompt: jensun`
JENSUN_TEMPLATE = PromptTemplate("jensun", False, system_prompt_with_special_tokens=TEMP_P,
                                 user_start_tag="QUESTION:", user_end_tag=", \n ANSWER:", asst_start_tag="",
                                 asst_end_tag="")
JUDGE_INSTRUCTION = ("You are a fair judge. Given a question, a ground-truth answer and a test response, reply YES "
                     "if and only if the test response contains ALL information elements of the ground truth that "
                     "are relevant to the question, otherwise NO. Gibberish or repetition is NO.")

Judge = Callable[[Sequence[str], Sequence[str], Sequence[str]], list[bool]]


def jensun_prompt(question: str, icr: Sequence[tuple[str, str]] | None = None) -> str:
    """`Evaluator.get_template`: without ICR `TEMP_P + "QUESTION:{q}, \\n ANSWER:"`; with ICR the examples
    numbered from 4 ("4 Question: q Answer: a", one a line), then "\\n\\nNow it's your turn.QUESTION:{q}, ANSWER: "."""
    if not icr:
        return f"{TEMP_P}QUESTION:{question}, \n ANSWER:"
    examples = "\n".join(f"{i + 4} Question: {q} Answer: {a}" for i, (q, a) in enumerate(icr))
    return f"{TEMP_P}{examples}\n\nNow it's your turn." + f"QUESTION:{question}, ANSWER: "


def jensun_answer(decoded: str) -> str:
    """The answer JensUn keeps from a decoded prompt + generation: the text after the last "ANSWER:", stripped."""
    return decoded.split(ANSWER_MARK)[-1].strip()


def draw_icr(pool: Sequence[Mapping[str, Any]], rng: random.Random, k: int = 3) -> list[tuple[str, str]]:
    """`get_ret_icr`: k distinct random (question, answer) pairs of the ICR pool (retain_standard)."""
    if len(pool) < k:
        raise ConfigError("LKF evaluation", field="icr_examples", value=k,
                          fix=f"the ICR pool (retain_standard) has {len(pool)} rows: give icr_examples <= {len(pool)}")
    return [(pool[i]["question"], pool[i]["answer"]) for i in rng.sample(range(len(pool)), k)]


def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 50,
                     batch_size: int = 8) -> list[str]:
    """Greedy answers to plain prompts as JensUn's `Evaluator.evaluate` keeps them: tokenizer(prompt) (BOS added by
    the tokenizer, no chat template), greedy decoding, prompt + generation decoded without special tokens, the text
    after the last "ANSWER:"."""
    from unlearning.evaluation.generation import eos_ids, greedy_generate

    ids = [list(tokenizer(p)["input_ids"]) for p in prompts]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    gens = greedy_generate(model, ids, eos_token_ids=eos_ids(tokenizer, model), pad_token_id=pad,
                           max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [jensun_answer(tokenizer.decode(list(p) + list(g), skip_special_tokens=True)) for p, g in zip(ids, gens)]


# --------------------------------------------------------------------------------------------------
# judges


def _yes(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower().startswith(("yes", "yeah"))
    return bool(value)


def rouge_judge(threshold: float = 0.5) -> Judge:
    """The offline stand-in: Yes when the response's ROUGE-L recall against the ground truth reaches threshold."""
    from unlearning.metrics.rouge import rouge_record

    def judge(questions: Sequence[str], truths: Sequence[str], responses: Sequence[str]) -> list[bool]:
        return [rouge_record(t, r)["rougeL_recall"] >= threshold for t, r in zip(truths, responses)]

    return judge


def callable_judge(spec: str) -> Judge:
    """A user function named "module:function", called as f(questions, ground_truths, responses)."""
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("LKF evaluation", field="judge.callable", value=spec,
                          fix=f"cannot load it ({exc}): give module:function importable on the trial's path") from None

    def judge(questions: Sequence[str], truths: Sequence[str], responses: Sequence[str]) -> list[bool]:
        out = list(fn(list(questions), list(truths), list(responses)))
        if len(out) != len(responses):
            raise ConfigError("LKF evaluation", field="judge.callable", value=spec,
                              fix=f"it returned {len(out)} verdicts for {len(responses)} answers: return one each")
        return [_yes(v) for v in out]

    return judge


def model_judge(model_name: str, instruction: str = JUDGE_INSTRUCTION, max_new_tokens: int = 3,
                batch_size: int = 16, device: str | None = None) -> Judge:
    """A local causal LM (hub id or folder) asked per answer; Yes when its greedy reply starts with "yes". The
    question goes through the judge's chat template when its tokenizer has one, else as plain text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearning.evaluation.generation import eos_ids, greedy_generate

    tok = AutoTokenizer.from_pretrained(model_name)
    lm = AutoModelForCausalLM.from_pretrained(model_name)
    lm.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()

    def prompt(q: str, t: str, r: str) -> list[int]:
        body = f"Question: {q}\nGround Truth: {t}\nTest Response: {r}\nEvaluation (YES or NO):"
        if getattr(tok, "chat_template", None):
            msgs = [{"role": "system", "content": instruction}, {"role": "user", "content": body}]
            return list(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True))
        return list(tok(f"{instruction}\n\n{body}")["input_ids"])

    def judge(questions: Sequence[str], truths: Sequence[str], responses: Sequence[str]) -> list[bool]:
        ids = [prompt(q, t, r) for q, t, r in zip(questions, truths, responses)]
        pad = int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        with torch.no_grad():
            gens = greedy_generate(lm, ids, eos_token_ids=eos_ids(tok, lm), pad_token_id=pad,
                                   max_new_tokens=max_new_tokens, batch_size=batch_size)
        return [_yes(tok.decode(g, skip_special_tokens=True)) for g in gens]

    return judge


def build_judge(config: Any, device: str | None = None) -> Judge:
    """The judge of a `JudgeConfig`."""
    if config.kind == "callable":
        return callable_judge(config.callable)
    if config.kind == "model":
        instruction = Path(config.prompt_file).read_text(encoding="utf-8") if config.prompt_file else JUDGE_INSTRUCTION
        return model_judge(config.model, instruction, config.max_new_tokens, config.batch_size, device)
    return rouge_judge(config.threshold)


# --------------------------------------------------------------------------------------------------
# scores


def any_yes_rate(verdicts: Sequence[Sequence[bool]]) -> float:
    """`compute_any_one_average(...)[-1]`: the share of facts (rows) with at least one Yes among their answers."""
    return float(np.mean([any(v) for v in verdicts])) if len(verdicts) else float("nan")


def mean_yes(verdicts: Sequence[Sequence[bool]]) -> float:
    """`average_case_acc`: the mean Yes over every (fact, variant) answer."""
    flat = [bool(x) for v in verdicts for x in v]
    return float(np.mean(flat)) if flat else float("nan")


def _judged(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], variants: Callable[[Any], list[str]],
            judge: Judge, icr: Callable[[], list[tuple[str, str]]] | None, max_new_tokens: int,
            batch_size: int) -> tuple[list[list[bool]], list[list[str]]]:
    questions = [variants(r) for r in rows]
    flat = [(i, q) for i, qs in enumerate(questions) for q in qs]
    prompts = [jensun_prompt(q, icr() if icr else None) for _, q in flat]
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens, batch_size)
    verdicts = judge([q for _, q in flat], [rows[i]["answer"] for i, _ in flat], answers)
    per_row: list[list[bool]] = [[] for _ in rows]
    per_gen: list[list[str]] = [[] for _ in rows]
    for (i, _), v, a in zip(flat, verdicts, answers):
        per_row[i].append(bool(v))
        per_gen[i].append(a)
    return per_row, per_gen


def jensun_scores(model: Any, tokenizer: Any, forget: Sequence[Mapping[str, Any]],
                  retain: Sequence[Mapping[str, Any]], icr_pool: Sequence[Mapping[str, Any]], judge: Judge,
                  variants: Callable[[Any], list[str]], selected: Sequence[str], *, max_new_tokens: int = 50,
                  icr_examples: int = 3, seed: int = 42, batch_size: int = 8) -> dict[str, Any]:
    """The selected judged scores (OU layout {name: {"agg_value": ...}}): forget_J_P, forget_J_ICR, forget_J_W,
    retain_J_avg (see the module docstring)."""
    want = set(selected)
    out: dict[str, Any] = {}
    kw = {"max_new_tokens": max_new_tokens, "batch_size": batch_size}
    plain = icr_v = None
    if want & {"forget_J_P", "forget_J_W"}:
        plain, gens = _judged(model, tokenizer, forget, variants, judge, None, **kw)
        if "forget_J_P" in want:
            out["forget_J_P"] = {"agg_value": any_yes_rate(plain), "value_by_index": {
                str(i): {"verdicts": v, "generations": g} for i, (v, g) in enumerate(zip(plain, gens))}}
    if want & {"forget_J_ICR", "forget_J_W"}:
        rng = random.Random(seed)
        icr_v, gens = _judged(model, tokenizer, forget, variants, judge,
                              lambda: draw_icr(icr_pool, rng, icr_examples), **kw)
        if "forget_J_ICR" in want:
            out["forget_J_ICR"] = {"agg_value": any_yes_rate(icr_v), "value_by_index": {
                str(i): {"verdicts": v, "generations": g} for i, (v, g) in enumerate(zip(icr_v, gens))}}
    if "forget_J_W" in want and plain is not None and icr_v is not None:
        out["forget_J_W"] = {"agg_value": any_yes_rate([a + b for a, b in zip(plain, icr_v)])}
    if "retain_J_avg" in want and retain:
        ret, _ = _judged(model, tokenizer, retain, variants, judge, None, **kw)
        out["retain_J_avg"] = {"agg_value": mean_yes(ret), "answers": sum(len(v) for v in ret)}
    return out
