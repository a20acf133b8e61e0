"""WMDP (docs/wmdp.md): multiple choice through lm-evaluation-harness (wmdp_mini, mmlu_mini, wmdp_cyber, mmlu, ...),
in two roles. A training benchmark (`data.benchmark: wmdp`): RMU & co. unlearn WMDP's raw-text corpora as
open-unlearning runs them (configs/experiment/unlearn/wmdp/default.yaml: `<corpus>-forget-corpus` against
`<corpus>-retain-corpus`, 512-token chunks) and the run is evaluated by its `lm_eval:` block alone. An add-on: a
TOFU run's `eval.settings.lm_eval` block is read beside TOFU's own evaluation (`registry.addon_blocks`).

    data: {benchmark: wmdp, source: hub, corpus: cyber}      # cais/wmdp-corpora; or a folder, or wmdp-mini
    eval: {settings: {lm_eval: {tasks: [wmdp_cyber, mmlu]}}} # the default tasks (wmdp_mini + mmlu_mini on the mini)

    unlearn-sweep run presets/wmdp.yaml          # RMU on the cyber corpora, open-unlearning's recipe (GPU, hub)
    unlearn-sweep train CONFIG.yaml              # one run; data: {benchmark: wmdp, source: wmdp-mini} offline
    unlearn-sweep eval tofu-mini/target --benchmark wmdp-mini --out runs/wmdp   # LMEval_EVAL.json + _SUMMARY.json
    unlearn-sweep eval MODEL --benchmark wmdp --out runs/wmdp  # wmdp_bio, wmdp_cyber, mmlu (hub); --metrics: tasks
    python -m unlearning.benchmarks.wmdp tofu-mini/target tofu-mini/retain90      # the table of both
    python -m unlearning.benchmarks.wmdp MODEL --tasks wmdp_mini,mmlu_mini --limit 0.5

wmdp-mini (`data.source: wmdp-mini`, `unlearning.data.wmdp_corpora`) is made from the tofu-mini data of the model's
zoo: the forget10 authors' facts as plain text against the retain90 authors', read by wmdp_mini / mmlu_mini.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from unlearning.benchmarks.base import (Evaluation, TrainingDefaults, is_mini, mini_source_check,
                                        no_retain_model_on_tofu_facts, refuse_eval_options, text_items)
from unlearning.benchmarks.tofu import tofu_source, zoo_tofu_data
from unlearning.data.wmdp_corpora import (HUB_MISSING, MINI_CORPUS, WMDP_CORPORA_HUB_ID, corpus_split,
                                          missing_corpus_files, wmdp_corpus)
from unlearning.errors import ConfigError, DataError, UserError
from unlearning.evaluation.wmdp_eval import (SETTINGS_KEY, LmEvalConfig, LmEvalEvaluator, metric_names, parse_lm_eval,
                                             uses_wmdp_mini)

MINI_FORGET_SPLIT = "forget10"   # the tofu-mini split wmdp-mini's forget corpus and questions are made from
MINI_TASKS = ("wmdp_mini", "mmlu_mini")             # wmdp-mini's lm-eval tasks (`unlearning/evaluation/lm_eval_tasks/`)
REAL_TASKS = ("wmdp_bio", "wmdp_cyber", "mmlu")     # real WMDP's (cais/wmdp, cais/mmlu): `unlearn-sweep eval`'s default
MINI_MAX_LENGTH = 64             # training chunks on wmdp-mini: its forget corpus is ~1,100 tokens (512 on real data)
REAL_MAX_LENGTH = 512            # open-unlearning configs/data/datasets/WMDP_forget.yaml


def default_tasks(data: Any) -> list[str]:
    """The lm_eval tasks of a `data.benchmark: wmdp` run without a block: wmdp-mini's, or wmdp_<corpus> + mmlu."""
    return list(MINI_TASKS) if is_mini(data.source, WMDP.mini) else [f"wmdp_{data.corpus}", "mmlu"]


def _tofu_data(source: str, model_name: str) -> Path:
    """The tofu-mini data folder wmdp-mini is made from (the model's zoo size, or `wmdp-mini-<size>`'s)."""
    try:
        return Path(tofu_source("tofu-mini" + source[len(WMDP.mini):], model_name))
    except ConfigError as exc:  # name the user's source, not the tofu-mini one it is made from
        raise ConfigError(exc.where, field=exc.field, value=source,
                          fix=f"wmdp-mini is made from tofu-mini's data: {exc.fix}") from None


def check_wmdp_source(data: Any, where: str) -> None:
    """What `data.source` names can be read, before any compute: the hub has no bio forget corpus, wmdp-mini one
    corpus pair (cyber), a folder must hold both corpora (one-line ConfigError naming the field, value and fix)."""
    source, splits = data.source, (data.forget_split, data.retain_split)
    if source == "hub":
        gated = next((s for s in splits if s in HUB_MISSING), None)
        if gated:
            raise ConfigError(where, field="data.source", value=source,
                              fix=f"{gated} is not on the hub ({WMDP_CORPORA_HUB_ID}; CAIS gives it on request): put "
                                  f"{' and '.join(f'{s}.jsonl' for s in splits)} in a folder and give data.source "
                                  "that folder")
    elif is_mini(source, WMDP.mini):
        if data.corpus != MINI_CORPUS:
            raise ConfigError(where, field="data.corpus", value=data.corpus,
                              fix=f"wmdp-mini has one corpus pair (every fact of tofu-mini's forget10 / retain90 "
                                  f"authors), named {MINI_CORPUS}: leave corpus out; {data.corpus} is real WMDP's "
                                  "(data.source hub or a folder)")
    elif Path(source).expanduser().is_dir():
        fix = missing_corpus_files(Path(source).expanduser(), splits)
        if fix:
            raise ConfigError(where, field="data.source", value=source, fix=fix)
    elif Path(source).expanduser().exists():
        raise ConfigError(where, field="data.source", value=source,
                          fix=f"{source} is a file: give the folder that holds {splits[0]}.jsonl and {splits[1]}.jsonl")


def wmdp_source(data: Any, model_name: str) -> Any:
    """hub -> cais/wmdp-corpora; wmdp-mini[-<size>] -> the generated corpora folder (made once from the tofu-mini
    data of the model's zoo); a folder -> its Path; anything else a hub id laid out like cais/wmdp-corpora."""
    from unlearning.data.wmdp_corpora import prepare_mini_corpora

    check_wmdp_source(data, "train config")
    if data.source == "hub":
        return WMDP_CORPORA_HUB_ID
    if is_mini(data.source, WMDP.mini):
        return prepare_mini_corpora(_tofu_data(data.source, model_name), MINI_FORGET_SPLIT)
    path = Path(data.source).expanduser()
    return path if path.is_dir() else data.source


def lm_eval_block(data: Any, settings: Mapping[str, Any], where: str) -> LmEvalConfig:
    """The run's `lm_eval` block (or the default tasks), validated; other eval.settings keys are refused."""
    other = next((k for k in settings if k != SETTINGS_KEY), None)
    if other is not None:
        raise ConfigError(where, field=f"eval.settings.{other}", value=settings[other],
                          fix="a WMDP run is evaluated by lm-evaluation-harness alone: put its settings under "
                              f"eval.settings.{SETTINGS_KEY} ({', '.join(LmEvalConfig.model_fields)}) or remove it")
    cfg = parse_lm_eval(settings.get(SETTINGS_KEY) or {"tasks": default_tasks(data)}, where)
    if uses_wmdp_mini(cfg) and not is_mini(data.source, WMDP.mini):
        raise ConfigError(where, field=f"eval.settings.{SETTINGS_KEY}.tasks", value=cfg.tasks,
                          fix="wmdp_mini / mmlu_mini are made from tofu-mini: use data.source wmdp-mini, or name "
                              f"real WMDP's tasks (wmdp_{data.corpus}, mmlu)")
    return cfg


def wmdp_evaluation(config: Any, bundle: Any, **_reference: Any) -> Evaluation:
    """The run's lm-eval evaluation (built on first use; no retain reference: accuracy is read against chance)."""
    cfg = lm_eval_block(config.data, config.eval.settings, "train config")
    tofu = _tofu_data(config.data.source, config.model.name) if uses_wmdp_mini(cfg) else None
    built: list[LmEvalEvaluator] = []

    def evaluate(model: Any) -> dict[str, Any]:
        if not built:
            built.append(LmEvalEvaluator(cfg, bundle.tokenizer, tofu, MINI_FORGET_SPLIT))
        return built[0].evaluate(model)

    return Evaluation(evaluate=evaluate)


def needs_questions(method: str) -> bool:
    """Whether a method trains on question/answer pairs (IdkDPO's "I don't know" answers), not raw text."""
    from unlearning.methods import build_method

    try:
        return "idk" in build_method(method).needs_ref_logps
    except UserError:
        return False


def _no_questions(where: str, method: str) -> None:
    if needs_questions(method):
        raise ConfigError(where, field="method.name", value=method,
                          fix=f"{method} needs questions for its 'I don't know' answers; WMDP trains on raw text: "
                              "pick a method that unlearns token sequences (RMU, GradDiff, NPO, SimNPO, ...)")


class WmdpBenchmark(TrainingDefaults):
    """WMDP: unlearn its raw-text corpora (a training benchmark) and read WMDP / MMLU accuracy through
    lm-evaluation-harness, also beside another benchmark's evaluation (the `lm_eval:` block, an add-on)."""

    name, title, mini = "wmdp", "WMDP", "wmdp-mini"
    settings_key = SETTINGS_KEY  # its block in eval.settings: its own evaluation, or an add-on to another's
    eval_settings = LmEvalConfig
    metric_aliases: dict[str, tuple[str, str]] = {}
    default_objectives = ({"name": "wmdp_mini_acc", "mode": "min"}, {"name": "mmlu_mini_acc", "mode": "max"})
    split_label = "WMDP corpus"

    # ---- the add-on role --------------------------------------------------------------------------
    def parse(self, block: Any, where: str) -> LmEvalConfig:
        """The validated block (one-line ConfigError naming `lm_eval.<field>`)."""
        return parse_lm_eval(block, where)

    def addon(self, cfg: LmEvalConfig, tokenizer: Any, source: Any, forget_split: str) -> LmEvalEvaluator:
        """Its evaluator beside the run's own: `.evaluate(model)` -> {<task>_<metric>: value}."""
        return LmEvalEvaluator(cfg, tokenizer, source, forget_split)

    def addon_metrics(self, spec: Any, cfg: LmEvalConfig) -> tuple[str, ...]:
        """The metrics the block reports, for a spec's objectives (wmdp-mini needs tofu-mini data, or wmdp-mini's
        corpora); paths made absolute in the spec (trials run in other working directories)."""
        own_mini = spec.benchmark is self and is_mini(spec.data.source, self.mini)
        if uses_wmdp_mini(cfg) and not (own_mini or spec.data.source.startswith("tofu-mini")):
            raise ConfigError("spec", field="lm_eval.tasks", value=cfg.tasks,
                              fix="wmdp-mini is derived from tofu-mini: use data.source tofu-mini (or wmdp-mini with "
                                  "data.benchmark wmdp), or name other tasks (wmdp_bio, wmdp_cyber, mmlu)")
        if cfg.include_path or cfg.data_files:
            spec.eval.settings[SETTINGS_KEY] = cfg.model_dump(exclude_defaults=True)
        return metric_names(cfg, where="spec")

    # ---- data -------------------------------------------------------------------------------------
    def data_defaults(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """open-unlearning's WMDP recipe: the cyber corpora, 512-token chunks (64 on wmdp-mini); the splits follow
        the corpus (`<corpus>-forget-corpus`, `<corpus>-retain-corpus`), and the corpus a forget split given alone."""
        out = dict(raw)
        source = str(out.setdefault("source", self.mini))
        forget = out.get("forget_split")
        if out.get("corpus") is None:
            out["corpus"] = forget.split("-", 1)[0] if forget in self._splits("forget") else "cyber"
        try:
            corpus = wmdp_corpus(out["corpus"])
        except DataError:
            corpus = None  # the corpus field's own check names it
        if corpus is not None:
            out.setdefault("forget_split", corpus_split(corpus, "forget"))
            out.setdefault("retain_split", corpus_split(corpus, "retain"))
            if out["forget_split"] != corpus_split(corpus, "forget") and out["forget_split"] in self._splits("forget"):
                raise ConfigError("data", field="forget_split", value=out["forget_split"],
                                  fix=f"corpus {corpus} unlearns {corpus_split(corpus, 'forget')}: change the "
                                      "corpus or leave forget_split out")
        out.setdefault("max_length", MINI_MAX_LENGTH if is_mini(source, self.mini) else REAL_MAX_LENGTH)
        return out

    @staticmethod
    def _splits(kind: str) -> tuple[str, ...]:
        from unlearning.data.wmdp_corpora import CORPORA

        return tuple(corpus_split(c, kind) for c in CORPORA)

    def check_split(self, field: str, value: Any) -> None:
        kind = "forget" if field == "forget_split" else "retain"
        if value not in self._splits(kind):
            raise ValueError(f"WMDP's {kind} corpora are {' and '.join(self._splits(kind))} (cais/wmdp-corpora); "
                             "set data.corpus instead")

    def corpus_name(self, value: str) -> str:
        """`data.corpus`'s canonical name (cyber, bio); UserError with the fix if unknown."""
        return wmdp_corpus(value)

    def source(self, data: Any, model_name: str) -> Any:
        return wmdp_source(data, model_name)

    def examples(self, data: Any, tokenizer: Any, template: Any, source: Any, with_idk: bool, seed: int) -> Any:
        """Each corpus joined and cut into `max_length`-token chunks (`base.text_items`, open-unlearning's
        PretrainingDataset); `limit` keeps the first forget chunks."""
        from unlearning.data.wmdp_corpora import load_wmdp_corpus

        if with_idk:
            _no_questions("train config", "IdkDPO")

        def items(split: str) -> list[dict[str, list[int]]]:
            return text_items(tokenizer, [r["text"] for r in load_wmdp_corpus(split, source)], data.max_length)

        return items(data.forget_split)[:data.limit], items(data.retain_split), None

    def hub_dataset(self, data: Any) -> str | None:
        return WMDP_CORPORA_HUB_ID

    def zoo_data(self, size: str) -> tuple[str, Any]:
        from unlearning.models.zoo import zoo_data_dir

        return "tofu-mini", zoo_data_dir(size)  # wmdp-mini is made from tofu-mini's data

    # ---- evaluation -------------------------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        return ()  # the lm_eval block's (`addon_metrics`): a spec always has one (`check_source` fills it)

    def retain_model_for(self, config: Any) -> str | None:
        return None  # WMDP has no retain model: accuracy falls to chance (0.25)

    def eval_hook(self, config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
        ev = wmdp_evaluation(config, bundle)
        return lambda model, epoch: ev.evaluate(model)

    def evaluation(self, config: Any, bundle: Any, **reference: Any) -> Evaluation:
        return wmdp_evaluation(config, bundle, **reference)

    # ---- sweep spec -------------------------------------------------------------------------------
    def derives_retain(self, source: str) -> bool:
        return False

    def check_source(self, spec: Any, minis: Mapping[str, str]) -> None:
        """data.source names wmdp-mini, hub or a folder holding the corpora (checked here); then the defaults that
        depend on it: the `lm_eval` block's tasks, written into the spec so its plans and trials read them."""
        mini_source_check(spec, self, minis)
        check_wmdp_source(spec.data, "spec")
        spec.eval.settings.setdefault(SETTINGS_KEY, {"tasks": default_tasks(spec.data)})

    def objectives_for(self, data: Any) -> tuple[dict[str, str], ...]:
        """wmdp_<corpus>_acc down, mmlu_acc kept (wmdp_mini_acc / mmlu_mini_acc on wmdp-mini)."""
        forget, keep = default_tasks(data)
        return ({"name": f"{forget}_acc", "mode": "min"}, {"name": f"{keep}_acc", "mode": "max"})

    def check_eval(self, spec: Any, settings: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        """Only the lm_eval block (taken out before: `settings` is the rest); raw text, so no question methods."""
        lm_eval_block(spec.data, settings, "spec")
        _no_questions("spec", spec.method.base)

    def check_model_refs(self, spec: Any, i: int, m: Any) -> None:
        """No retain reference; on wmdp-mini a tofu-mini zoo model (its target was trained on the authors' facts)."""
        no_retain_model_on_tofu_facts(spec, i, m, self, "its accuracy is read against chance, 0.25",
                                      "cais/wmdp-corpora")

    def smoke_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        block = dict(settings.get(SETTINGS_KEY) or {})
        limit = block.get("limit")
        block["limit"] = 8 if limit is None or limit > 8 else limit
        return {**settings, SETTINGS_KEY: block}

    def open_unlearning_args(self, data: Any, model: Any, trainer: str, task_name: str) -> list[str]:
        """open-unlearning's WMDP experiment (configs/experiment/unlearn/wmdp/default.yaml @ d3d7cf9: local jsonl
        files data/wmdp/wmdp-corpora/<corpus>-{forget,retain}-corpus.jsonl, max_steps 80)."""
        self.exportable(data)
        parts = ["python src/train.py --config-name=unlearn.yaml", "experiment=unlearn/wmdp/default",
                 f"data_split={data.corpus}", f"trainer={trainer}", f"task_name={task_name}",
                 f"model.model_args.pretrained_model_name_or_path={model.name}"]
        folder = "data/wmdp/wmdp-corpora" if data.source == "hub" else str(Path(data.source).expanduser().resolve())
        for key, split in (("forget", data.forget_split), ("retain", data.retain_split)):
            arg = f"data.{key}.WMDP_{key}.args"
            if data.source != "hub" or split != corpus_split(data.corpus, key):
                parts.append(f"{arg}.hf_args.data_files={folder}/{split}.jsonl")
            if data.max_length != REAL_MAX_LENGTH:
                parts.append(f"{arg}.max_length={data.max_length}")
        if data.limit is None:  # every chunk, `epochs` times; with a limit the experiment's max_steps stays
            parts.append("trainer.args.max_steps=-1")
        return parts

    # ---- `unlearn-sweep eval` -------------------------------------------------------------------------
    cli_choices = ("wmdp-mini", "wmdp")  # wmdp-mini: MINI_TASKS on the model's tofu-mini data; wmdp: REAL_TASKS
    headline = ("wmdp_mini_acc", "mmlu_mini_acc", "wmdp_cyber_acc", "wmdp_bio_acc", "mmlu_acc")

    def cli_evaluator(self, choice: str, model: str, o: Mapping[str, Any]) -> Any:
        """The model and its `LmEvalEvaluator` (`.write`: LMEval_EVAL.json + LMEval_SUMMARY.json). `--metrics`
        names the lm-eval tasks (default MINI_TASKS or REAL_TASKS); wmdp-mini's data is `--data` (a tofu-mini data
        folder) or the model's zoo data, and `--forget-split` the split its questions ask about."""
        refuse_eval_options(o, NOT_FOR_WMDP)
        mini = choice == self.mini
        tasks = o["settings"].get("metrics") or list(MINI_TASKS if mini else REAL_TASKS)
        cfg = parse_lm_eval({"tasks": tasks}, where="unlearn-sweep eval")
        if not mini:
            hub = ("lm-eval reads real WMDP / MMLU from the hub (cais/wmdp, cais/mmlu): remove it, or use --benchmark "
                   "wmdp-mini for the tofu-mini data")
            refuse_eval_options(o, {"data": (None, hub), "forget_split": (MINI_FORGET_SPLIT, hub)})
            if uses_wmdp_mini(cfg):
                raise ConfigError("eval", field="metrics", value=tasks,
                                  fix="wmdp_mini / mmlu_mini are made from tofu-mini: use --benchmark wmdp-mini")
            return model_evaluator(model, cfg, None, dtype=o["dtype"], device=o["device"], template=o["template"])
        if o["data"] is not None and not Path(o["data"]).expanduser().is_dir():
            raise ConfigError("eval", field="data", value=o["data"],
                              fix="give the tofu-mini data folder wmdp-mini is made from, or leave it out (the "
                                  "model's zoo data)")
        source = Path(o["data"]).expanduser() if o["data"] else zoo_tofu_data(model)
        return model_evaluator(model, cfg, source, o["forget_split"], dtype=o["dtype"], device=o["device"],
                               template=o["template"])


WMDP = WmdpBenchmark()

# `unlearn-sweep eval` options WMDP has no use for: (the option's default, why) -> a one-line ConfigError naming it
NOT_FOR_WMDP = {
    "retain_logs": (None, "WMDP has no retain model (its accuracy is read against chance, 0.25): remove it"),
    "retain_model": (None, "WMDP has no retain model (its accuracy is read against chance, 0.25): remove it"),
    "max_new_tokens": (None, "WMDP scores each option's log-likelihood and generates nothing: remove it"),
    "question_key": ("question", "WMDP's prompts are its lm-eval tasks' own: remove it"),
}


def model_evaluator(model: str, cfg: LmEvalConfig, tofu: str | Path | None, forget_split: str = MINI_FORGET_SPLIT,
                    *, dtype: str = "float32", device: str = "cpu", template: str | None = None
                    ) -> tuple[Any, LmEvalEvaluator]:
    """(the loaded model bundle, its LmEvalEvaluator on `cfg`'s tasks); wmdp-mini's tasks are made from the tofu-mini
    data folder `tofu` and its `forget_split` (ignored by other tasks)."""
    from unlearning.models.loading import load_bundle

    bundle = load_bundle(model, dtype=dtype, device=device, template=template)
    return bundle, LmEvalEvaluator(cfg, bundle.tokenizer, tofu if uses_wmdp_mini(cfg) else None, forget_split)


def main() -> None:
    """The WMDP / MMLU accuracy table of several models (`unlearn-sweep eval --benchmark wmdp[-mini]` is one model's
    logs)."""
    import argparse

    from unlearning.evaluation.tofu_eval import summary_table

    ap = argparse.ArgumentParser(description="WMDP / MMLU accuracy of models through lm-evaluation-harness.")
    ap.add_argument("models", nargs="+", help="zoo names or model folders")
    ap.add_argument("--tasks", default=",".join(MINI_TASKS))
    ap.add_argument("--forget-split", default=MINI_FORGET_SPLIT)
    ap.add_argument("--source", default="tofu-mini", help="tofu-mini (the zoo's data) or a tofu-mini data folder")
    ap.add_argument("--limit", type=float, default=None)
    args = ap.parse_args()
    limit = None if args.limit is None else (int(args.limit) if args.limit >= 1 else args.limit)
    cfg = parse_lm_eval({"tasks": args.tasks.split(","), "limit": limit})
    rows = {}
    for name in args.models:
        tofu = tofu_source(args.source, name) if uses_wmdp_mini(cfg) else None
        bundle, ev = model_evaluator(name, cfg, tofu, args.forget_split)
        rows[name] = ev.evaluate(bundle.model)
    print(summary_table(rows, list(dict.fromkeys(k for m in rows.values() for k in m))))


if __name__ == "__main__":
    main()
