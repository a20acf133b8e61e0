"""MUSE (docs/muse.md) in a run: where its corpus comes from, its training chunks, and the evaluation
`unlearn-sweep train` (and every sweep trial) runs when `data.benchmark: muse`.

`unlearning.benchmarks.hook` dispatches here on the benchmark. `eval.settings` holds MuseEvalConfig fields
(metrics, knowmem/verbmem token budgets, batching, gibberish, ...) plus one of the two reference keys:
`retain_logs` (a retain model's MUSE_EVAL.json or its folder) or `retain_model` (evaluated once, its min-k AUC
cached: `muse_reference`). For muse-mini zoo models without either, the zoo's retain model is used
(muse-mini/target -> muse-mini/retain); elsewhere privleak is relative to 0.5. The corpus and source are the
data section's (`max_length` here truncates the evaluated texts, 2048 as open-unlearning; `data.max_length` is
the training chunk length). Each evaluation returns the flat
{metric: value} dict with the short names (gibberish_rate = the flagged share of verbmem generations).

    ev = muse_evaluation(config, bundle, retain_model="muse-mini/retain")
    ev.evaluate(model)              # {"forget_knowmem_ROUGE": 0.41, "retain_knowmem_ROUGE": ..., "privleak": ...}
    ev.reference_dir                # the folder of the retain model's MUSE_EVAL.json (trials load it)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from unlearning.benchmarks.base import (Evaluation, TrainingDefaults, check_selected_metrics, no_reference_in_settings,
                                        retain_reference, split_reference, text_items, zoo_name)
from unlearning.errors import ConfigError
from unlearning.evaluation.config import MUSE_ALIASES, MUSE_METRICS, MuseEvalConfig, flat_metrics, parse_config


def muse_settings(config: Any) -> tuple[MuseEvalConfig, dict[str, Any]]:
    """(the validated MUSE settings of a train config, its reference keys)."""
    settings, refs = split_reference(config.eval.settings)
    return parse_config(MuseEvalConfig, settings, where="train config: eval.settings"), refs


def default_muse_retain_model(model_name: str) -> str | None:
    """muse-mini[-<size>]/target -> muse-mini[-<size>]/retain; None for other models."""
    from unlearning.models.muse_zoo import parse_muse_zoo_name

    return f"{model_name.split('/', 1)[0]}/retain" if parse_muse_zoo_name(model_name) is not None else None


def muse_source(data: Any, model_name: str) -> Any:
    """muse-mini[-<size>] -> the muse-mini zoo's corpus; hub -> muse-bench/MUSE-<corpus>; else a folder / hub id."""
    from pathlib import Path

    from unlearning.data.muse import MUSE_HUB_IDS
    from unlearning.models.muse_zoo import MUSE_ZOO, muse_data_dir, parse_muse_zoo_name

    source = data.source
    if source == "hub":
        return MUSE_HUB_IDS[data.corpus]
    if source == MUSE_ZOO or source.startswith(f"{MUSE_ZOO}-"):
        parsed = parse_muse_zoo_name(model_name) if source == MUSE_ZOO else None
        size = parsed[0].size if parsed else ("small" if source == MUSE_ZOO else source[len(MUSE_ZOO) + 1:])
        path = muse_data_dir(size)
        if not path.is_dir():
            flag = "" if size == "small" else f" --size {size}"
            raise ConfigError("train config", field="data.source", value=source,
                              fix=f"muse-mini is not generated yet: run `unlearn-sweep prepare muse-mini{flag}`")
        return path
    return Path(source) if Path(source).exists() else source


def muse_evaluation(config: Any, bundle: Any, *, retain_logs: str | None = None, retain_model: str | None = None,
                    cache_dir: Any = None, dtype: str = "float32", device: str = "cpu",
                    template: str | None = None) -> Evaluation:
    """The MUSE evaluation of a train config's data and settings (reference keys given here, not in settings)."""
    from unlearning.evaluation.muse_eval import MuseEvaluator
    from unlearning.evaluation.muse_reference import muse_reference

    cfg, _ = muse_settings(config)
    source = muse_source(config.data, config.model.name)
    auc, folder = muse_reference(cfg, config.data.corpus, source, retain_logs=retain_logs, retain_model=retain_model,
                                 dtype=dtype, device=device, cache_dir=cache_dir, template=template)
    evaluator = MuseEvaluator(bundle.tokenizer, bundle.template, cfg, corpus=config.data.corpus, source=source,
                              reference_auc=auc, device=device)
    return Evaluation(evaluate=lambda model: flat_metrics(evaluator.evaluate(model), MUSE_ALIASES), reference_dir=folder)


def make_muse_eval_hook(config: Any, bundle: Any) -> Callable[[Any, int], dict[str, Any]]:
    """hook(model, epoch) -> flat MUSE metrics, for `make_train_eval_hook` (see the module docstring)."""
    from unlearning.models.loading import resolve_dtype

    _, refs = muse_settings(config)
    if refs["retain_logs"] is None and refs["retain_model"] is None:
        refs["retain_model"] = default_muse_retain_model(config.model.name)
    device = str(next(bundle.model.parameters()).device)
    ev = muse_evaluation(config, bundle, retain_logs=refs["retain_logs"], retain_model=refs["retain_model"],
                         dtype=resolve_dtype(config.model.dtype), device=device, template=config.model.template)
    return lambda model, epoch: ev.evaluate(model)


def _examples(data: Any, tokenizer: Any, source: Any, with_idk: bool) -> Any:
    """Each raw corpus as `max_length`-token chunks (`base.text_items`); `limit` keeps the first forget chunks."""
    from unlearning.data.muse import load_muse

    if with_idk:
        raise ConfigError("train config", field="method.name", value="IdkDPO",
                          fix="IdkDPO needs questions for its 'I don't know' answers; MUSE trains on raw text: "
                              "pick a method that unlearns token sequences (GradAscent, GradDiff, NPO, SimNPO, ...)")

    def items(split: str) -> list[dict[str, list[int]]]:
        return text_items(tokenizer, [r["text"] for r in load_muse(data.corpus, "raw", split, source)], data.max_length)

    return items(data.forget_split)[:data.limit], items(data.retain_split), None


class MuseBenchmark(TrainingDefaults):
    """MUSE: news / books raw text (muse-bench/MUSE-*; muse-mini generated by its zoo), docs/muse.md."""

    name, title, mini = "muse", "MUSE", "muse-mini"
    eval_settings = MuseEvalConfig
    metric_aliases = MUSE_ALIASES
    default_objectives = ({"name": "forget_verbmem_ROUGE", "mode": "min"},
                          {"name": "retain_knowmem_ROUGE", "mode": "max"},
                          {"name": "gibberish_rate", "mode": "min"})
    split_label = "MUSE raw split"

    def data_defaults(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """open-unlearning's MUSE recipe: raw/forget against retain1 of News; 2048-token chunks (256 on
        muse-mini, whose zoo models have 512 positions)."""
        out = dict(raw)
        source = out.setdefault("source", "muse-mini")
        out.setdefault("forget_split", "forget")
        out.setdefault("retain_split", "retain1")
        out.setdefault("corpus", "news")
        out.setdefault("max_length", 256 if str(source).startswith("muse-mini") else 2048)
        return out

    def check_split(self, field: str, value: Any) -> None:
        if field == "forget_split" and value != "forget":
            raise ValueError("MUSE unlearns raw/forget: use forget")
        if field == "retain_split" and value not in ("retain1", "retain2"):
            raise ValueError("MUSE's retain corpora are raw/retain1 (open-unlearning's default) and raw/retain2")

    def corpus_name(self, value: str) -> str:
        """`data.corpus`'s canonical name (news, books); UserError with the fix if unknown."""
        from unlearning.data.muse import muse_corpus

        return muse_corpus(value)

    def source(self, data: Any, model_name: str) -> Any:
        return muse_source(data, model_name)

    def examples(self, data: Any, tokenizer: Any, template: Any, source: Any, with_idk: bool, seed: int) -> Any:
        return _examples(data, tokenizer, source, with_idk)

    def forget_split_file(self, data: Any) -> str:
        return f"raw/{data.forget_split}"

    def hub_dataset(self, data: Any) -> str | None:
        from unlearning.data.muse import MUSE_HUB_IDS

        return MUSE_HUB_IDS[data.corpus]

    def zoo_data(self, size: str) -> tuple[str, Any]:
        from unlearning.models.muse_zoo import muse_data_dir

        return self.mini, muse_data_dir(size)

    def metric_names(self) -> tuple[str, ...]:
        return (*MUSE_METRICS, *MUSE_ALIASES)

    def retain_model_for(self, config: Any) -> str | None:
        return default_muse_retain_model(config.model.name)

    def eval_hook(self, config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
        return make_muse_eval_hook(config, bundle)

    def evaluation(self, config: Any, bundle: Any, **reference: Any) -> Evaluation:
        return muse_evaluation(config, bundle, **reference)

    def check_eval(self, spec: Any, settings: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        settings = dict(settings)
        no_reference_in_settings(settings)
        check_selected_metrics(spec, self, settings, skip=skip)

    def check_model_refs(self, spec: Any, i: int, m: Any) -> None:
        """muse-mini is unlearned from muse-mini zoo models (retain model derived); names must parse."""
        zoo = zoo_name(f"models.{i}.name", m.name)
        derived = None
        if self.derives_retain(spec.data.source):
            if zoo is None or zoo[1] != "target" or not m.name.startswith(self.mini):
                raise ConfigError("spec", field=f"models.{i}.name", value=m.name,
                                  fix="muse-mini is unlearned from its zoo's target (muse-mini/target); give "
                                      "data.source hub (or a folder) for other models")
            derived = f"{m.name.split('/', 1)[0]}/retain"
        retain_reference(spec, i, m, derived, "MUSE_EVAL.json")
        if m.retain_model is not None:
            rz = zoo_name(f"models.{i}.retain_model", m.retain_model)
            if rz is not None and (rz[1] != "retain" or not m.retain_model.startswith(self.mini)):
                raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model,
                                  fix=f"the model trained without raw/forget: {m.name.split('/')[0]}/retain")

    def smoke_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return {**settings, **{k: min(int(settings.get(k, 16)), 16)
                               for k in ("knowmem_max_new_tokens", "verbmem_max_new_tokens")}}

    def open_unlearning_args(self, data: Any, model: Any, trainer: str, task_name: str) -> list[str]:
        """open-unlearning's MUSE experiment (configs/experiment/unlearn/muse/default.yaml)."""
        self.exportable(data)
        split = {"news": "News", "books": "Books"}[data.corpus]
        parts = ["python src/train.py --config-name=unlearn.yaml", "experiment=unlearn/muse/default",
                 f"data_split={split}", f"forget_split={data.forget_split}", f"retain_split={data.retain_split}",
                 f"trainer={trainer}", f"task_name={task_name}",
                 f"model.model_args.pretrained_model_name_or_path={model.name}"]
        return parts + ([f"retain_logs_path={model.retain_logs}"] if model.retain_logs else [])


    # ---- `unlearn-sweep eval` ----------------------------------------------------------------------
    cli_choices = ("muse-news", "muse-books", "muse-mini")
    headline = ("forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak",
                "forget_gibberish", "forget_gibberish_rate")

    def cli_evaluator(self, choice: str, model: str, o: Mapping[str, Any]) -> Any:
        from unlearning.evaluation.muse_eval import MuseEvaluator
        from unlearning.evaluation.muse_reference import muse_reference
        from unlearning.models.loading import load_bundle

        settings = {**o["settings"], "gibberish": {**o["settings"].get("gibberish", {}), "max_length": 512}}
        if o["max_new_tokens"] is not None:
            settings["knowmem_max_new_tokens"] = settings["verbmem_max_new_tokens"] = o["max_new_tokens"]
        cfg = parse_config(MuseEvalConfig, settings, where="unlearn-sweep eval")
        corpus = "news" if choice == self.mini else choice.split("-", 1)[1]
        source = o["data"] or (zoo_muse_data(model) if choice == self.mini else None)
        ref_auc, _ = muse_reference(cfg, corpus, source, retain_logs=o["retain_logs"], retain_model=o["retain_model"],
                                    dtype=o["dtype"], device=o["device"], template=o["template"])  # cached
        bundle = load_bundle(model, dtype=o["dtype"], device=o["device"], template=o["template"])
        return bundle, MuseEvaluator(bundle.tokenizer, bundle.template, cfg, corpus=corpus, source=source,
                                     reference_auc=ref_auc, device=o["device"])


def zoo_muse_data(model: str) -> Any:
    """The muse-mini corpus of the model's zoo (or the default one); error when not prepared."""
    from unlearning.models.muse_zoo import muse_data_dir, parse_muse_zoo_name

    parsed = parse_muse_zoo_name(model)
    data = muse_data_dir(parsed[0].size if parsed else "small")
    if not (data / "raw" / "forget.jsonl").is_file():
        raise ConfigError("eval", field="benchmark", value="muse-mini",
                          fix="muse-mini is not generated yet: run `unlearn-sweep prepare muse-mini` (or pass --data DIR)")
    return data


MUSE = MuseBenchmark()
