"""WMDP-style evaluation through lm-evaluation-harness (wmdp_eval.py) and the wmdp-mini generator (wmdp_mini.py).

lm-eval's accuracy must equal an independent computation with the project's own scoring (`score_items`): the
option with the highest summed log-likelihood, on wmdp-mini's local tasks and on lm-eval's registered WMDP /
MMLU tasks (their own prompts, choices and metrics) run on generated local copies of their data. `unlearn-sweep eval
--benchmark wmdp-mini` writes the evaluator's numbers as LMEval_EVAL.json / LMEval_SUMMARY.json and refuses the
options WMDP has no use for.

Run: pytest tests/evaluation/test_wmdp_eval.py -q        (~30 s; the slow zoo check needs the prepared zoo)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval_fixtures import small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.data import wmdp_mini
from unlearning.data.tofu_mini import TEMPLATES, TofuMiniConfig, write
from unlearning.errors import ConfigError, DataError
from unlearning.evaluation.scoring import score_items
from unlearning.evaluation.wmdp_eval import (LmEvalEvaluator, check_mc_rows, materialise_tasks, metric_names,
                                             parse_lm_eval, split_settings)

torch.set_num_threads(1)


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# the generator


def test_wmdp_mini_has_wmdp_and_mmlu_schemas_and_same_attribute_distractors(tmp_path):
    src = write(TofuMiniConfig(n_authors=20, seed=0), tmp_path / "tofu")
    sets = wmdp_mini.build(src, "forget10")
    full = rows_of(src / "full.jsonl")
    forget = rows_of(src / "forget10.jsonl")
    holdout = rows_of(src / "holdout10.jsonl")
    q = len(TEMPLATES)
    assert len(forget) == 2 * q  # 2 forget authors
    assert len(sets["bio"]) == len(sets["cyber"]) == 2 * q // 2
    # one question per forget QA, its answer the correct option; biographies in bio, works in cyber
    by_question = {r["question"]: i for i, r in enumerate(forget)}
    for subset, templates in (("bio", wmdp_mini.BIO_TEMPLATES), ("cyber", wmdp_mini.CYBER_TEMPLATES)):
        for row in sets[subset]:
            assert set(row) == {"question", "choices", "answer"}
            i = by_question[row["question"]]
            assert i % q in templates
            assert len(row["choices"]) == 4 == len(set(row["choices"]))
            assert row["choices"][row["answer"]] == forget[i]["answer"]
            # distractors: other authors' values of the same attribute, first the other forget / holdout authors
            same = {r["answer"] for j, r in enumerate(full + holdout) if j % q == i % q}
            wrong = [c for k, c in enumerate(row["choices"]) if k != row["answer"]]
            assert set(wrong) <= same
            others = {r["answer"] for j, r in enumerate(forget + holdout) if j % q == i % q and j // q != i // q}
            if len(others - {forget[i]["answer"]}) >= 3:
                assert set(wrong) <= others
    mmlu = sets["mmlu"]
    assert {r["subject"] for r in mmlu} == {"retain_authors", "real_authors", "world_facts"}
    assert sum(r["subject"] == "retain_authors" for r in mmlu) == 2 * q  # as many retain authors as forget ones
    retain_answers = {r["question"]: r["answer"] for r in full[: 2 * q]}
    for row in mmlu:
        assert set(row) == {"question", "subject", "choices", "answer"} and len(set(row["choices"])) == 4
        if row["subject"] == "retain_authors":
            assert row["choices"][row["answer"]] == retain_answers[row["question"]]
    # the correct position is drawn, not fixed; the same inputs give the same files
    assert len({r["answer"] for r in sets["bio"] + sets["cyber"]}) == 4
    assert wmdp_mini.build(src, "forget10") == sets
    assert wmdp_mini.build(src, "forget10", seed=1) != sets
    for name in wmdp_mini.SUBSETS:
        assert check_mc_rows(wmdp_mini.write(sets, tmp_path / "out") / f"{name}.jsonl") == len(sets[name])
    # cached by content: a second call reuses the folder, another forget split gets its own
    a = wmdp_mini.prepare_wmdp_mini(src, "forget10", cache_dir=tmp_path / "cache")
    assert wmdp_mini.prepare_wmdp_mini(src, "forget10", cache_dir=tmp_path / "cache") == a
    b = wmdp_mini.prepare_wmdp_mini(src, "forget05", cache_dir=tmp_path / "cache")
    assert a != b and len(rows_of(b / "bio.jsonl")) == q // 2


def test_wmdp_mini_refuses_data_that_is_not_tofu_mini(tmp_path):
    src = write(TofuMiniConfig(n_authors=10, seed=0), tmp_path / "tofu")
    good = (src / "full.jsonl").read_text()
    rows = rows_of(src / "full.jsonl")
    rows[3]["question"] = "What is the airspeed of an unladen swallow?"
    (src / "full.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"full.jsonl, row 3, field 'question'.*template 3") as err:
        wmdp_mini.build(src, "forget10")
    assert "\n" not in str(err.value)
    (src / "full.jsonl").write_text(good)
    (src / "holdout10.jsonl").unlink()
    with pytest.raises(DataError, match=r"field 'holdout10'.*tofu-mini's generated splits"):
        wmdp_mini.build(src, "forget10")


@pytest.mark.parametrize("row, field", [
    ({"choices": ["a", "b"], "answer": 0}, "question"),
    ({"question": "q?", "choices": "a b c d", "answer": 0}, "choices"),
    ({"question": "q?", "choices": ["a", 3, "c", "d"], "answer": 0}, "choices"),
    ({"question": "q?", "choices": ["a", "b", "c", "d"], "answer": 4}, "answer"),
    ({"question": "q?", "choices": ["a", "b", "c", "d"], "answer": True}, "answer"),
    ({"question": "", "choices": ["a", "b", "c", "d"], "answer": 1}, "question"),
])
def test_task_data_of_the_wrong_schema_is_one_line_naming_row_and_field(tmp_path, row, field):
    path = tmp_path / "bio.jsonl"
    good = {"question": "Where?", "choices": ["a", "b", "c", "d"], "answer": 2}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=rf"bio.jsonl, row 1, field '{field}'") as err:
        check_mc_rows(path)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------------
# the settings block


@pytest.mark.parametrize("block, field, needle", [
    ({"tasks": []}, "lm_eval.tasks", "at least 1"),
    ({"tasks": ["wmdp_mini", "wmdp_mini"]}, "lm_eval.tasks", "listed twice"),
    ({"tasks": ["wmdp_mini"], "limit": 0}, "lm_eval.limit", "integer >= 1"),
    ({"tasks": ["wmdp_mini"], "limit": 1.5}, "lm_eval.limit", "fraction"),
    ({"tasks": ["wmdp_mini"], "batch_size": 0}, "lm_eval.batch_size", "greater than or equal to 1"),
    ({"tasks": ["wmdp_mini"], "fewshot": 5}, "lm_eval.fewshot", "allowed keys: tasks, limit"),
    ({"tasks": ["wmdp_mini"], "include_path": "/nonexistent/tasks"}, "lm_eval.include_path", "not a folder"),
    ({"tasks": ["wmdp_bio"], "data_files": {"wmdp_bio": "/nonexistent.jsonl"}}, "lm_eval.data_files", "not a file"),
    ({"tasks": ["wmdp_bio"], "data_files": {"wmdp_cyber": __file__}}, "lm_eval.data_files", "names tasks of"),
    ({"tasks": ["wmdp_mini"], "data_files": {"wmdp_mini": __file__}}, "lm_eval.data_files", "generated"),
    ("wmdp_mini", "lm_eval", "give a mapping"),
])
def test_bad_settings_are_one_line_errors_naming_the_field(block, field, needle):
    with pytest.raises(ConfigError, match=rf"field '{field}'.*{needle}") as err:
        split_settings({"metrics": ["forget_quality"], "lm_eval": block})
    assert "\n" not in str(err.value)


def test_settings_split_and_local_metric_names():
    rest, cfg = split_settings({"metrics": ["forget_quality"], "lm_eval": {"tasks": ["wmdp_mini", "mmlu_mini"]}})
    assert rest == {"metrics": ["forget_quality"]} and cfg.tasks == ["wmdp_mini", "mmlu_mini"]
    assert split_settings({"metrics": None}) == ({"metrics": None}, None)
    assert set(metric_names(cfg)) == {f"{t}_{m}" for t in ("wmdp_mini", "mmlu_mini", "wmdp_mini_bio",
                                                           "wmdp_mini_cyber") for m in ("acc", "acc_norm")}


def test_unknown_task_names_and_group_data_files_are_refused():
    with pytest.raises(ConfigError, match=r"field 'lm_eval.tasks': got 'wmdp_bioo'.*did you mean 'wmdp_bio'"):
        metric_names(parse_lm_eval({"tasks": ["wmdp_bioo"]}))
    # a group's dataset cannot be replaced by one file
    with pytest.raises(ConfigError, match=r"field 'lm_eval.data_files': got 'wmdp'.*name the group's tasks"):
        metric_names(parse_lm_eval({"tasks": ["wmdp"], "data_files": {"wmdp": __file__}}))
    # lm-eval's own registered tasks and their metric lists (WMDP and MMLU report acc)
    names = metric_names(parse_lm_eval({"tasks": ["wmdp_bio", "wmdp_cyber", "mmlu"]}))
    assert names == ("wmdp_bio_acc", "wmdp_cyber_acc", "mmlu_acc")


def test_offline_hub_task_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match=r"lm-eval, field 'lm_eval.tasks'.*data_files") as err:
        LmEvalEvaluator(parse_lm_eval({"tasks": ["wmdp_cyber"]}), tofu_tokenizer())
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------------
# lm-eval's accuracy == the argmax of the project's own summed log-likelihoods


def independent_mc(model, tok, rows: list[dict], context, continuation) -> tuple[float, float, np.ndarray]:
    """acc and acc_norm from `score_items`: the summed log-likelihood of each option's continuation given the
    context (lm-eval's split: the continuation's tokens are those of context+continuation past the context's),
    argmax over the options; acc_norm divides by the option's length in characters, as lm-eval does."""
    items = []
    for r in rows:
        ctx = context(r)
        n = len(tok(ctx)["input_ids"])
        for c in r["choices"]:
            ids = tok(ctx + continuation(c))["input_ids"]
            items.append({"input_ids": ids, "labels": [-100] * n + ids[n:], "attention_mask": [1] * len(ids)})
    scores = score_items(model, items, pad_token_id=tok.pad_token_id)
    ll = np.array([-s.avg_loss * s.n_labels for s in scores]).reshape(len(rows), -1)
    gold = np.array([r["answer"] for r in rows])
    lengths = np.array([[len(c) for c in r["choices"]] for r in rows], dtype=float)
    return float(np.mean(ll.argmax(1) == gold)), float(np.mean((ll / lengths).argmax(1) == gold)), ll


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmdp")
    src = small_tofu_dir(root, rows=10**6)  # every split of the 10-author tofu-mini the tokenizer was trained on
    tok = tofu_tokenizer()
    return src, tok, tiny_llama(len(tok), seed=3)


def test_wmdp_mini_accuracy_equals_the_projects_scoring(tiny, tmp_path):
    src, tok, model = tiny
    cfg = parse_lm_eval({"tasks": ["wmdp_mini", "mmlu_mini"], "batch_size": 16})
    ev = LmEvalEvaluator(cfg, tok, source=src, forget_split="forget10")
    model.train()
    got = ev.evaluate(model)
    assert model.training  # the run's mode is restored
    assert set(got) == set(metric_names(cfg))
    # the zoo template with the answer after a newline: lm-eval moves the context's trailing "\n" into the
    # continuation, so the summed log-likelihood covers "\n" + option
    context = lambda r: f"Question: {r['question']}\nAnswer:"  # noqa: E731
    continuation = lambda c: "\n" + c  # noqa: E731
    sizes = {}
    for task, name in (("wmdp_mini_bio", "bio"), ("wmdp_mini_cyber", "cyber"), ("mmlu_mini", "mmlu")):
        rows = rows_of(ev.data_dir / f"{name}.jsonl")
        acc, acc_norm, ll = independent_mc(model, tok, rows, context, continuation)
        sizes[task] = (len(rows), acc, acc_norm)
        assert got[f"{task}_acc"] == pytest.approx(acc, abs=1e-12), task
        assert got[f"{task}_acc_norm"] == pytest.approx(acc_norm, abs=1e-12), task
        assert len(np.unique(ll.round(6))) > ll.size // 2  # real scores, not ties
    (nb, ab, nab), (nc, ac, nac) = sizes["wmdp_mini_bio"], sizes["wmdp_mini_cyber"]
    assert got["wmdp_mini_acc"] == pytest.approx((nb * ab + nc * ac) / (nb + nc))  # the group, weighted by size
    assert got["wmdp_mini_acc_norm"] == pytest.approx((nb * nab + nc * nac) / (nb + nc))
    # a second evaluation of the same (unchanged) model gives the same numbers; `limit` keeps the first docs
    assert ev.evaluate(model) == got
    short = LmEvalEvaluator(parse_lm_eval({"tasks": ["wmdp_mini_bio"], "limit": 4}), tok, source=src)
    acc4, _, _ = independent_mc(model, tok, rows_of(ev.data_dir / "bio.jsonl")[:4], context, continuation)
    assert short.evaluate(model)["wmdp_mini_bio_acc"] == pytest.approx(acc4)


def test_registered_wmdp_and_mmlu_tasks_run_on_local_copies(tiny, tmp_path):
    """The hub names through the same code path: lm-eval's own wmdp_bio / wmdp_cyber / mmlu_astronomy configs
    (letter options, their descriptions) with `data_files` pointing at generated data of their schema."""
    src, tok, model = tiny
    data = wmdp_mini.write(wmdp_mini.build(src, "forget10"), tmp_path / "data")
    cfg = parse_lm_eval({"tasks": ["wmdp_bio", "wmdp_cyber", "mmlu_astronomy"],
                         "data_files": {"wmdp_bio": str(data / "bio.jsonl"), "wmdp_cyber": str(data / "cyber.jsonl"),
                                        "mmlu_astronomy": str(data / "mmlu.jsonl")}})
    got = LmEvalEvaluator(cfg, tok).evaluate(model)
    assert set(got) == {"wmdp_bio_acc", "wmdp_cyber_acc", "mmlu_astronomy_acc"}
    letters = lambda r: "".join(f"\n{L}. {c}" for L, c in zip("ABCD", r["choices"]))  # noqa: E731
    for task, name, topic in (("wmdp_bio", "bio", "biology"), ("wmdp_cyber", "cyber", "cybersecurity"),
                              ("mmlu_astronomy", "mmlu", "astronomy")):
        description = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
        rows = [dict(r, choices=list("ABCD"), text=r["question"].strip() + letters(r))
                for r in rows_of(data / f"{name}.jsonl")]
        acc, _, _ = independent_mc(model, tok, rows, lambda r: description + r["text"] + "\nAnswer:", lambda c: " " + c)
        assert got[f"{task}_acc"] == pytest.approx(acc, abs=1e-12), task


def test_materialised_tasks_point_at_the_data_folder(tmp_path):
    from unlearning.yaml_io import read_yaml

    out = materialise_tasks(tmp_path)
    bio = read_yaml(out / "wmdp_mini_bio.yaml")
    assert bio["dataset_kwargs"]["data_files"] == {"test": str(tmp_path / "bio.jsonl")}
    assert read_yaml(out / "wmdp_mini.yaml")["task"] == ["wmdp_mini_bio", "wmdp_mini_cyber"]


# --------------------------------------------------------------------------------------------------
# the zoo: the target knows the forget facts, the retain model does not


@pytest.mark.slow
def test_zoo_target_knows_wmdp_mini_and_retain_model_is_at_chance(prepared_zoo):
    from unlearning.models.loading import load_bundle
    from unlearning.benchmarks.tofu import tofu_source

    cfg = parse_lm_eval({"tasks": ["wmdp_mini", "mmlu_mini"]})
    got = {}
    for name in ("tofu-mini/target", "tofu-mini/retain90"):
        bundle = load_bundle(name, dtype="float32")
        got[name] = LmEvalEvaluator(cfg, bundle.tokenizer, tofu_source("tofu-mini", name)).evaluate(bundle.model)
    target, retain = got["tofu-mini/target"], got["tofu-mini/retain90"]
    # 100 forget questions, 4 options: chance 0.25 (binomial sd 0.043); measured target 0.88, retain 0.24
    assert target["wmdp_mini_acc"] >= 0.7 and target["mmlu_mini_acc"] >= 0.8
    assert retain["wmdp_mini_acc"] <= 0.37 and retain["mmlu_mini_acc"] >= 0.8


# --------------------------------------------------------------------------------------------------
# `unlearn-sweep eval --benchmark wmdp-mini`: one zoo model, open-unlearning's LMEval_* logs


def test_eval_command_writes_lmeval_logs_equal_to_the_evaluator(prepared_zoo, tmp_path, monkeypatch, capsys):
    """The CLI's LMEval_EVAL.json / LMEval_SUMMARY.json hold the accuracies LmEvalEvaluator.evaluate gives for the
    same model; `python -m unlearning.benchmarks.wmdp` prints the same numbers."""
    import sys

    from typer.testing import CliRunner

    from unlearn_sweep.cli import app
    from unlearning.benchmarks import wmdp
    from unlearning.benchmarks.tofu import tofu_source
    from unlearning.metrics.report import read_eval, read_summary
    from unlearning.models.loading import load_bundle

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", "tofu-mini/target", "--benchmark", "wmdp-mini", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["LMEval_EVAL.json", "LMEval_SUMMARY.json"]
    summary, logs = read_summary(out, benchmark="LMEval"), read_eval(out, benchmark="LMEval")
    assert "wmdp_mini_acc" in result.output and "LMEval_SUMMARY.json" in result.output

    bundle = load_bundle("tofu-mini/target", dtype="float32")
    cfg = parse_lm_eval({"tasks": ["wmdp_mini", "mmlu_mini"]})
    direct = LmEvalEvaluator(cfg, bundle.tokenizer, tofu_source("tofu-mini", "tofu-mini/target")).evaluate(bundle.model)
    assert set(summary) == set(logs) == set(direct) == set(metric_names(cfg))
    for key in ("wmdp_mini_acc", "wmdp_mini_bio_acc", "wmdp_mini_cyber_acc", "mmlu_mini_acc"):
        assert summary[key] == pytest.approx(direct[key], rel=1e-6), key
        assert logs[key] == {"agg_value": summary[key]}
    assert direct["wmdp_mini_acc"] >= 0.7  # the target knows the forget facts (measured 0.88)

    monkeypatch.setattr(sys, "argv", ["wmdp", "tofu-mini/target", "--tasks", "wmdp_mini,mmlu_mini"])
    capsys.readouterr()
    wmdp.main()
    header, _, row = capsys.readouterr().out.strip().splitlines()
    table = dict(zip(header.split()[1:], row.split()[1:]))
    assert row.startswith("tofu-mini/target") and set(table) == set(direct)
    assert all(float(table[k]) == pytest.approx(v, abs=5e-5) for k, v in direct.items())  # printed to 4 places


def test_eval_command_refuses_options_wmdp_has_no_use_for(prepared_zoo, tmp_path, monkeypatch, capsys):
    """--retain-logs / --retain-model / --max-new-tokens / --question-key (and --data / --forget-split on the hub's
    wmdp): exit 2, one line naming the option and the fix, before any evaluation (nothing written). LKF's eval refuses
    a retain model through the same check (`unlearning.benchmarks.base.refuse_eval_options`)."""
    import sys

    from unlearn_sweep.cli import main

    for bench, option, value, field in (("wmdp-mini", "--max-new-tokens", "8", "max_new_tokens"),
                                        ("wmdp-mini", "--question-key", "paraphrased_question", "question_key"),
                                        ("wmdp-mini", "--retain-logs", str(tmp_path), "retain_logs"),
                                        ("wmdp", "--data", str(tmp_path), "data"),
                                        ("wmdp", "--forget-split", "forget05", "forget_split"),
                                        ("lkf-mini", "--retain-logs", str(tmp_path), "retain_logs")):
        monkeypatch.setattr(sys, "argv", ["unlearn-sweep", "eval", "tofu-mini/target", "--benchmark", bench,
                                          option, value, "--out", str(tmp_path / "out")])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2, err
        assert len(err.splitlines()) == 1 and f"field '{field}'" in err and "Fix:" in err and "remove it" in err
    assert not (tmp_path / "out").exists()
