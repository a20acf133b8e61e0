"""lkf-mini: an offline LKF (JensUn's "lesser-known facts") with LKF's exact split names and fields, made from
tofu-mini's facts so that the tofu-mini zoo's target model already knows them (no new model is trained).

    from unlearning.benchmarks.lkf_mini import write_lkf_mini, lkf_mini_dir
    folder = lkf_mini_dir("small")                          # generated once beside the zoo's data, then reused
    write_lkf_mini(tofu_mini_data_dir, out_dir)             # the same, anywhere
    python -m unlearning.benchmarks.lkf_mini --tofu DIR --out DIR

Splits (`unlearning.data.lkf.LKF_SPLITS`; every row has `question`, `answer`):

* `forget_standard`: the facts to forget = tofu-mini's `forget05` (2 authors x 20 QA, 40 facts on the default
  50-author tofu-mini; the smaller split keeps an evaluation over 16 variants per fact cheap);
* `forget_train_para`: each forget fact twice, with its question and with tofu-mini's paraphrased question
  (LKF's paraphrase-augmented training set);
* `forget_eval_para`: each forget fact with 15 paraphrases of its question in LKF's columns `q_qwen1..5`,
  `q_phi1..5`, `q_mist1..5`. They are TEMPLATES (LKF's come from three LLMs): the qwen columns wrap the
  question, the phi columns wrap tofu-mini's hand-written paraphrased question, the mist columns mix both
  (`PARAPHRASES`);
* `retain_standard`: tofu-mini's `retain95` (everything else the target learnt); `retain_train_para`: the same
  with one wrapped question per row; `retain_eval_para`: tofu-mini's `retain_perturbed` rows with 6
  paraphrases (`q_qwen1..2`, `q_phi1..2`, `q_mist1..2`; LKF's retain evaluation has the question + 6);
* `relearn_standard`: general-knowledge QA disjoint from the forget facts (tofu-mini's `real_authors` +
  `world_facts`, which the base model learnt first), the role of LKF's Phi-generated relearning set.

Deterministic: a pure function of the tofu-mini files. `lkf_mini_dir` writes it into
`<zoo>/lkf-mini-v<VERSION>/` (the zoo folder's name is the hash of tofu-mini's config and the zoo's recipe)
and rewrites it only when missing or when the version changes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from unlearning.data.lkf import LKF_PARAPHRASE_FIELDS, LKF_SPLITS
from unlearning.data.tofu import load_tofu

VERSION = 1
FORGET_SPLIT = "forget05"
RETAIN_SPLIT = "retain95"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# 15 paraphrase templates: {q} = the question, {p} = tofu-mini's paraphrased question (q when there is none)
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "qwen": ("Tell me: {q}", "I would like to know this. {q}", "Quick question: {q}", "{q} Answer briefly.",
             "Here is something I wonder about: {q}"),
    "phi": ("{p}", "Tell me: {p}", "Do you know this? {p}", "{p} Please be brief.", "Question for you: {p}"),
    "mist": ("{q} I am curious.", "Please answer: {q}", "Please answer: {p}", "Here is a question. {p}",
             "{p} One short answer, please."),
}
assert tuple(f"q_{m}{i}" for m in PARAPHRASES for i in range(1, 6)) == LKF_PARAPHRASE_FIELDS


def paraphrases(question: str, paraphrased: str | None, per_model: int = 5) -> dict[str, str]:
    """LKF's paraphrase columns for one question: the first `per_model` templates of each model, filled."""
    p = paraphrased or question
    out: dict[str, str] = {}
    for model, templates in PARAPHRASES.items():
        for i, template in enumerate(templates[:per_model], start=1):
            out[f"q_{model}{i}"] = template.format(q=question, p=p, lq=_lower_first(question))
    return out


def generate_lkf_mini(tofu_dir: str | Path) -> dict[str, list[dict]]:
    """Every LKF split from a tofu-mini data folder (see the module docstring)."""
    facts = load_tofu(f"{FORGET_SPLIT}_perturbed", tofu_dir)
    retain = load_tofu(RETAIN_SPLIT, tofu_dir)
    retain_eval = load_tofu("retain_perturbed", tofu_dir)
    general = load_tofu("real_authors", tofu_dir) + load_tofu("world_facts", tofu_dir)
    qa = lambda r: {"question": r["question"], "answer": r["answer"]}  # noqa: E731
    return {
        "forget_standard": [qa(r) for r in facts],
        "forget_train_para": [row for r in facts for row in
                              (qa(r), {"question": r["paraphrased_question"], "answer": r["answer"]})],
        "forget_eval_para": [{**qa(r), **paraphrases(r["question"], r["paraphrased_question"])} for r in facts],
        "retain_standard": [qa(r) for r in retain],
        "retain_train_para": [row for r in retain for row in
                              (qa(r), {"question": PARAPHRASES["qwen"][0].format(q=r["question"]),
                                       "answer": r["answer"]})],
        "retain_eval_para": [{**qa(r), **paraphrases(r["question"], r.get("paraphrased_question"), per_model=2)}
                             for r in retain_eval],
        "relearn_standard": [qa(r) for r in general],
    }


def write_lkf_mini(tofu_dir: str | Path, out_dir: str | Path) -> Path:
    """Write `<out_dir>/<split>.jsonl` for every LKF split (atomically, the manifest last) and return out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = generate_lkf_mini(tofu_dir)
    assert set(splits) == set(LKF_SPLITS)
    for name, rows in splits.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, out / f"{name}.jsonl")
    manifest = {"version": VERSION, "tofu_mini": str(tofu_dir), "forget": FORGET_SPLIT, "retain": RETAIN_SPLIT,
                "rows": {k: len(v) for k, v in splits.items()}}
    (out / "lkf_mini.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def lkf_mini_dir(size: str | None = None) -> Path:
    """The lkf-mini folder of the zoo's tofu-mini of `size` (generated on first use; tofu-mini must exist)."""
    from unlearning.errors import ConfigError
    from unlearning.models.zoo import DEFAULT_SIZE, zoo_data_dir

    size = size or DEFAULT_SIZE
    tofu = zoo_data_dir(size)
    if not tofu.is_dir():
        raise ConfigError("data", field="source", value=f"lkf-mini (size {size})",
                          fix=f"lkf-mini is made from tofu-mini: run `unlearn-sweep prepare tofu-mini --size {size}`")
    out = tofu.parent / f"lkf-mini-v{VERSION}"
    manifest = out / "lkf_mini.json"
    if not (manifest.is_file() and json.loads(manifest.read_text()).get("version") == VERSION):
        write_lkf_mini(tofu, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate lkf-mini from a tofu-mini data folder.")
    parser.add_argument("--tofu", required=True, help="tofu-mini data folder (e.g. <zoo>/data)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    out = write_lkf_mini(args.tofu, args.out)
    print(json.loads((out / "lkf_mini.json").read_text())["rows"])


if __name__ == "__main__":
    main()
