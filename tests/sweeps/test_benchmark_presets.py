"""The real-benchmark presets carry their reference's settings (MUSE, LKF, WMDP); MUSE's checkpoint rule
(`select.first`); JensUn's plain few-shot prompt. Fast, offline (specs validated with check_models=False, no hub
access; WMDP's spec reads lm-eval's task index once, ~10-30 s)."""

from __future__ import annotations

import random

import pytest

from sweeps.spec.objectives import Constraint
from sweeps.selection.pareto import first_points, pareto_front
from sweeps.recording.results import Point
from sweeps.spec import load_spec
from sweeps.spec.objectives import Objective

OU = "locuslab/open-unlearning @ d3d7cf9e6b3c"
JENSUN = "nmndeep/JensUn-Unlearning @ 9d0cfd5101cb"


def _settings(name):
    spec = load_spec(name, check_models=False)
    return spec, spec.searches()[0].base


@pytest.mark.parametrize("corpus", ["news", "books"])
def test_muse_presets_match_open_unlearning(corpus):
    spec, base = _settings(f"muse-{corpus}")
    ev, train = base["eval"]["settings"], base["train"]
    cap = corpus.capitalize()
    # OU configs/experiment/unlearn/muse/default.yaml: muse-bench/MUSE-${data_split}_target
    assert spec.models[0].name == f"muse-bench/MUSE-{cap}_target"
    # OU scripts/muse_unlearn.sh: retain_logs_path=saves/eval/muse_${model}_${data_split}_retrain (the retrain model)
    assert spec.models[0].retain_model == f"muse-bench/MUSE-{cap}_retrain"
    # OU configs/eval/muse_metrics/forget_knowmem_ROUGE.yaml: generation_args.max_new_tokens 32
    assert ev["knowmem_max_new_tokens"] == 32
    # OU configs/eval/muse_metrics/forget_verbmem_ROUGE.yaml: generation_args.max_new_tokens 128
    assert ev["verbmem_max_new_tokens"] == 128
    # OU configs/data/datasets/MUSE_forget.yaml and MUSE_forget_verbmem.yaml: max_length 2048
    assert ev["max_length"] == 2048 and spec.data.max_length == 2048
    # OU configs/experiment/unlearn/muse/default.yaml: forget_split forget, retain_split retain1
    assert (spec.data.forget_split, spec.data.retain_split, spec.data.corpus) == ("forget", "retain1", corpus)
    # OU configs/experiment/unlearn/muse/default.yaml trainer.args: batch 4, grad_accum 8, 10 epochs, constant lr
    assert (train["batch_size"], train["grad_accum"], train["epochs"]) == (4, 8, 10)
    assert train["lr_scheduler"] == "constant"
    # OU scripts/muse_unlearn.sh: CUDA_VISIBLE_DEVICES=0,1 accelerate launch (2 processes)
    assert spec.resources.workers * spec.resources.gpus == 2
    # OU configs/trainer/NPO.yaml: beta 0.1
    assert base["method"]["hparams"]["beta"] == 0.1
    # jaechan-repo/muse_bench @ 54719c51f072 README.md: the first checkpoint with forget knowmem <= the retrained
    # model's; the value is OU docs/repro.md "Retain" row (News 0.33, Books 0.3)
    assert [str(c) for c in spec.select.first] == [f"forget_knowmem_ROUGE <= {0.33 if corpus == 'news' else 0.3:g}"]
    assert not spec.constraints  # neither OU nor MUSE has a "0.9 x target" rule


def test_lkf_preset_matches_jensun():
    spec, base = _settings("lkf")
    ev, train = base["eval"]["settings"], base["train"]
    # JensUn scripts/lkf_unlearn.sh: model=Llama-3.2-3B-Instruct, model_path=meta-llama/${model}
    assert spec.models[0].name == "meta-llama/Llama-3.2-3B-Instruct"
    # JensUn scripts/lkf_unlearn.sh: "JensUn unlearn/lkf/paraphrases.yaml 10" (trainer, experiment, epochs)
    assert spec.method.base == "JensUn" and train["epochs"] == 10
    # JensUn configs/experiment/unlearn/lkf/paraphrases.yaml: LKF_para_forget / LKF_para_retain
    assert (spec.data.forget_split, spec.data.retain_split) == ("forget_train_para", "retain_train_para")
    # JensUn configs/data/datasets/LKF_para_forget.yaml: max_length 512
    assert spec.data.max_length == 512
    # JensUn scripts/lkf_unlearn.sh: per_device_train_batch_size=4, gradient_accumulation_steps=4, 2 GPUs
    assert (train["batch_size"], train["grad_accum"]) == (4, 4)
    assert spec.resources.workers * spec.resources.gpus == 2
    # JensUn configs/experiment/unlearn/lkf/paraphrases.yaml: learning_rate 8e-6 (inside the searched range),
    # weight_decay 0.01, warmup_epochs 1.0
    lr = spec.space.params["lr"]
    assert lr.low <= 8e-6 <= lr.high
    assert (train["weight_decay"], train["warmup_epochs"]) == (0.01, 1.0)
    # JensUn configs/eval.yaml: generation.max_new_tokens 50
    assert ev["max_new_tokens"] == 50
    # JensUn src/evals/worst_eval.py AvgEval.evaluate: json.load(f)[:400]
    assert ev["retain_limit"] == 400
    # JensUn src/evals/utils.py Evaluator.get_template: TEMP_P plain prompt; get_ret_icr(num_ic_examples=3)
    assert ev["prompt"] == "jensun" and ev["icr_examples"] == 3
    # JensUn src/evals/worst_eval.py: J_P, J_ICR, J_W; AvgEval: J_avg
    assert {"forget_J_P", "forget_J_ICR", "forget_J_W", "retain_J_avg"} <= set(ev["metrics"])
    # JensUn configs/trainer/GradLearn.yaml -> finetune.yaml: lr 1e-5, batch 8, grad_accum 4, 10 epochs, wd 0.0
    from unlearning.evaluation.config import RelearnConfig

    relearn = RelearnConfig(**ev["robustness"]["relearn"])
    assert (relearn.recipe, relearn.lr, relearn.batch_size, relearn.grad_accum, relearn.epochs,
            relearn.weight_decay, relearn.rows) == ("jensun", 1e-5, 8, 4, 10, 0.0, None)


def test_wmdp_preset_matches_open_unlearning():
    """presets/wmdp.yaml against OU configs/experiment/unlearn/wmdp/default.yaml @ d3d7cf9 (+ the files it reads)."""
    from sweeps.selection.export import open_unlearning_command

    spec, base = _settings("wmdp")
    data, train, hp, ev = base["data"], base["train"], base["method"]["hparams"], base["eval"]
    # defaults: override /model: zephyr-7b-beta (configs/model/zephyr-7b-beta.yaml: HuggingFaceH4/zephyr-7b-beta)
    assert spec.models[0].name == "HuggingFaceH4/zephyr-7b-beta" and spec.models[0].retain_model is None
    # data_split: cyber; WMDP_forget / WMDP_retain: data/wmdp/wmdp-corpora/${data_split}-{forget,retain}-corpus.jsonl
    assert (data["benchmark"], data["corpus"]) == ("wmdp", "cyber")
    assert (data["forget_split"], data["retain_split"]) == ("cyber-forget-corpus", "cyber-retain-corpus")
    # configs/data/datasets/WMDP_forget.yaml / WMDP_retain.yaml: PretrainingDataset, max_length 512
    assert data["max_length"] == 512
    # trainer.args: per_device_train_batch_size 1, gradient_accumulation_steps 16, max_steps 80 (= 80 x 16 chunks)
    assert (train["batch_size"], train["grad_accum"]) == (1, 16)
    assert data["limit"] == 80 * 16 and train["epochs"] == 1
    # trainer.args: learning_rate 5e-5 (inside the searched range), lr_scheduler_type constant
    lr = spec.space.params["lr"]
    assert spec.space.names() == ["lr"] and lr.low <= 5e-5 <= lr.high
    assert train["lr_scheduler"] == "constant"
    # configs/trainer/finetune.yaml: weight_decay 0.00, no warm-up; bf16; zephyr's model config: torch_dtype bfloat16
    assert (train["weight_decay"], train["warmup_epochs"]) == (0.0, 0.0) and base["model"]["dtype"] == "bfloat16"
    # trainer.args: eval_strategy steps, eval_steps 0.5 (of the 80 steps); finetune.yaml: eval_on_start True
    assert (ev["every"], ev["on_start"]) == (0.5, True)
    # trainer.method_args: gamma 1.0, steering_coeff 2, retain_loss_type EMBED_DIFF, alpha 1, module_regex
    # model\.layers\.7, trainable_params_regex [model\.layers\.(5|6|7)\.mlp\.down_proj\.weight]
    assert base["method"]["name"] == "RMU"
    assert (hp["gamma"], hp["steering_coeff"], hp["retain_loss_type"], hp["alpha"], hp["layer"]) == \
        (1.0, 2.0, "EMBED_DIFF", 1.0, 7)
    assert hp["trainable_params_regex"] == r"model\.layers\.(5|6|7)\.mlp\.down_proj\.weight"
    # OU's RMU loss broadcasts [B] / [B, 1] (unlearning/methods/rmu.py): the same as ours at batch size 1
    assert train["batch_size"] == 1
    # eval.lm_eval.tasks: [wmdp_${data_split}, mmlu]; configs/eval/lm_eval.yaml simple_evaluate_args.batch_size 16
    assert ev["settings"] == {"lm_eval": {"tasks": ["wmdp_cyber", "mmlu"], "batch_size": 16}}
    assert [(o.name, o.mode) for o in spec.objectives] == [("wmdp_cyber_acc", "min"), ("mmlu_acc", "max")]
    assert spec.resources.workers * spec.resources.gpus == 1
    # the export is the reference's command line: experiment=unlearn/wmdp/default data_split=cyber
    [plan] = spec.searches()
    line = open_unlearning_command(spec, plan, base, "t")
    assert "experiment=unlearn/wmdp/default data_split=cyber trainer=RMU" in line
    assert "trainer.args.max_steps" not in line   # the experiment's max_steps 80 stays (= limit 1280 / 16)


def test_minis_say_how_they_differ():
    from sweeps.spec import PRESET_DIR

    for mini, real in (("muse-mini", "muse-news.yaml"), ("lkf-mini", "lkf.yaml"), ("wmdp-mini", "wmdp.yaml")):
        text = (PRESET_DIR / f"{mini}.yaml").read_text()
        assert real in text and "utility-preservation convention" not in text


# --------------------------------------------------------------------------------------------------
# MUSE's checkpoint rule


def _pt(trial, epoch, knowmem, verbmem, retain):
    return Point(trial_id=trial, epoch=epoch, model="m",
                 metrics={"forget_knowmem_ROUGE": knowmem, "forget_verbmem_ROUGE": verbmem,
                          "retain_knowmem_ROUGE": retain})


def test_first_points_pick_each_trials_first_checkpoint_at_the_retain_value():
    rule = [Constraint.model_validate("forget_knowmem_ROUGE <= 1.0 * retain")]
    refs = {"retain": {"forget_knowmem_ROUGE": 0.33}}
    pts = [_pt("a", 0, 0.64, 0.58, 0.56), _pt("a", 1, 0.50, 0.40, 0.55), _pt("a", 2, 0.33, 0.30, 0.52),
           _pt("a", 3, 0.10, 0.05, 0.40), _pt("b", 1, 0.30, 0.20, 0.50), _pt("b", 2, 0.20, 0.10, 0.45),
           _pt("c", 1, 0.60, 0.50, 0.56), _pt("c", 2, 0.40, 0.35, 0.54)]
    assert first_points(pts, rule, refs) == {("a", 2), ("b", 1)}  # equality counts; c never gets there
    unchecked: list[str] = []
    assert first_points(pts, rule, {}, unchecked) == {("a", 1), ("b", 1), ("c", 1)}  # no retain value: not applied
    assert unchecked and "no retain value" in unchecked[0]

    objectives = [Objective(name="forget_verbmem_ROUGE", mode="min"), Objective(name="retain_knowmem_ROUGE", mode="max")]
    res = pareto_front(pts, objectives, references=refs, first=rule)
    assert res.knee.key in {("a", 2), ("b", 1)}
    assert any("first point of its trial" in r for r in res.requirements)
    assert [p.key for p, ok in zip(res.front, res.meets) if ok] == [
        p.key for p in res.front if p.key in {("a", 2), ("b", 1)}]


def test_select_first_in_a_spec_round_trips(tmp_path):
    spec = load_spec("muse-news", check_models=False)
    assert spec.raw()["select"]["first"] == ["forget_knowmem_ROUGE <= 0.33"]
    from sweeps.spec import parse_spec

    again = parse_spec(spec.raw(), where="test", check_models=False)
    assert again.select.first == spec.select.first


# --------------------------------------------------------------------------------------------------
# JensUn's prompt


def test_jensun_prompt_format_and_answer_extraction():
    from unlearning.evaluation.lkf_jensun import TEMP_P, draw_icr, jensun_answer, jensun_prompt

    # JensUn src/evals/utils.py TEMP_P: backslash continuations keep 4 spaces; ends in a literal backslash + space
    assert TEMP_P.startswith("You are a good model. I want you to answer this question with a short response.     The")
    assert TEMP_P.endswith("Answer: 1945     Now it's your turn.\\ ") and TEMP_P.count("Question:") == 3
    # JensUn Evaluator.get_template without ICR: f"{TEMP_P}QUESTION:{ex}, \n ANSWER:"
    assert jensun_prompt("Who built X?") == TEMP_P + "QUESTION:Who built X?, \n ANSWER:"
    pool = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)]
    icr = draw_icr(pool, random.Random(0), 3)
    assert len({q for q, _ in icr}) == 3
    # with ICR: "\n".join(f"{idx + 4} Question: {q} Answer: {a}") + "\n\nNow it's your turn." + "QUESTION:{ex}, ANSWER: "
    lines = "\n".join(f"{i + 4} Question: {q} Answer: {a}" for i, (q, a) in enumerate(icr))
    assert jensun_prompt("Who?", icr) == f"{TEMP_P}{lines}\n\nNow it's your turn.QUESTION:Who?, ANSWER: "
    # Evaluator.evaluate: x.split("ANSWER:")[-1].strip() of the decoded prompt + generation
    assert jensun_answer(jensun_prompt("Who?") + " Ada Lovelace \n") == "Ada Lovelace"


def test_judged_scores_any_variant_and_icr_worst_case():
    from unlearning.evaluation.lkf_jensun import any_yes_rate, callable_judge, mean_yes, rouge_judge

    plain = [[False, True, False], [False, False, False], [False, False, False]]
    icr = [[False, False, False], [False, False, False], [True, False, False]]
    assert any_yes_rate(plain) == pytest.approx(1 / 3)  # J_P
    assert any_yes_rate(icr) == pytest.approx(1 / 3)  # J_ICR
    assert any_yes_rate([a + b for a, b in zip(plain, icr)]) == pytest.approx(2 / 3)  # J_W
    assert mean_yes(plain) == pytest.approx(1 / 9)  # J_avg
    assert rouge_judge(0.5)(["q", "q"], ["Ada Lovelace", "Paris"], ["It was Ada Lovelace.", "London"]) == [True, False]
    judge = callable_judge("tests.sweeps.test_benchmark_presets:_toy_judge")
    assert judge(["q", "q"], ["yes", "x"], ["yes", "y"]) == [True, False]


def _toy_judge(questions, truths, responses):
    return ["YES" if t == r else "no" for t, r in zip(truths, responses)]


def test_jensun_relearn_schedule_is_forget_anchored():
    from unlearning.evaluation.config import RelearnConfig
    from unlearning.evaluation.robustness import jensun_schedule

    cfg = RelearnConfig(recipe="jensun")
    plan = jensun_schedule(anchor=100, n_rows=30, config=cfg)
    # 100 anchor items / batch 8 = 13 micro-batches per epoch -> 4 steps (4+4+4+1); 10 epochs
    assert len(plan) == 40 and [len(m) for m in plan[:4]] == [4, 4, 4, 1]
    assert sum(len(b) for m in plan[:4] for b in m) == 100 and all(0 <= i < 30 for m in plan for b in m for i in b)
