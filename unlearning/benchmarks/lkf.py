"""LKF (JensUn's lesser-known facts, docs/lkf.md): its sources (lkf-mini: `lkf_mini.py`), question/answer training
examples, evaluator (no retain model: forgetting is read on the answers), spec checks; no open-unlearning export.

    from unlearning.benchmarks.lkf import LKF, lkf_source, make_lkf_eval_hook
    load_lkf("forget_standard", lkf_source("lkf-mini", "tofu-mini/target"))   # the generated lkf-mini
    hook = make_lkf_eval_hook(config, bundle)       # hook(model, epoch) -> {metric: aggregate}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from unlearning.benchmarks.base import (Evaluation, NotExportable, TrainingDefaults, check_selected_metrics, no_corpus,
                                        no_retain_model_on_tofu_facts, qa_examples, refuse_eval_options,
                                        train_attack_schedule)
from unlearning.data.lkf import LKF_TRAIN_DEFAULTS
from unlearning.errors import ConfigError
from unlearning.evaluation.config import LKF_METRICS, QA_ALIASES, LkfEvalConfig


def lkf_source(source: str, model_name: str | None = None) -> str | Path | None:
    """A train config's `data.source` for LKF -> what `load_lkf` takes: "lkf-mini" (made from the tofu-mini of the
    model's zoo size) or "lkf-mini-<size>" -> the generated folder; "hub" -> None (nmndeep/LKF-*); a folder -> its
    Path; anything else (another hub prefix owner/name) unchanged."""
    if source == "hub":
        return None
    if source == "lkf-mini" or source.startswith("lkf-mini-"):
        from unlearning.benchmarks.lkf_mini import lkf_mini_dir
        from unlearning.models.zoo import parse_zoo_name

        size = source[len("lkf-mini-"):] if source != "lkf-mini" else None
        if size is None and model_name is not None:
            parsed = parse_zoo_name(model_name)
            size = parsed[0].size if parsed else None
        return lkf_mini_dir(size)
    return Path(source) if Path(source).exists() else source



def lkf_eval_config(settings: dict[str, Any], max_length: int | None = None,
                    where: str = "train config: eval.settings") -> LkfEvalConfig:
    """`eval.settings` of an LKF run validated (one-line ConfigError); max_length defaults to the data's."""
    from unlearning.evaluation.config import parse_config

    settings = dict(settings)
    if max_length is not None:
        settings.setdefault("max_length", max_length)
    return parse_config(LkfEvalConfig, settings, where=where)


def make_lkf_eval_hook(config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
    """hook(model, epoch) -> {metric: aggregate} of an LKF train config (`data.benchmark: lkf`); the relearning
    attack at the points `robustness.relearn.every` names (the start, the last point, every k-th between)."""
    from unlearning.evaluation.lkf_eval import LkfEvaluator
    from unlearning.metrics.report import summarize, to_jsonable

    cfg = lkf_eval_config(config.eval.settings, config.data.max_length)
    attack_at = train_attack_schedule(config, cfg.selected(), cfg.robustness.relearn.every)
    device = next(bundle.model.parameters()).device
    ev = LkfEvaluator(bundle.tokenizer, bundle.template, cfg, lkf_source(config.data.source, config.model.name),
                      device=str(device), attack_at=attack_at)

    def hook(model: Any, epoch: float) -> dict[str, Any]:
        return to_jsonable(summarize(ev.evaluate(model, epoch)))

    return hook


def lkf_evaluation(config: Any, bundle: Any, **_reference: Any) -> Evaluation:
    """The LKF evaluation of a train config (the driver's epoch-0 evaluation of the target model)."""
    from unlearning.evaluation.config import flat_metrics
    from unlearning.evaluation.lkf_eval import LkfEvaluator

    cfg = lkf_eval_config(config.eval.settings, config.data.max_length)
    ev = LkfEvaluator(bundle.tokenizer, bundle.template, cfg, lkf_source(config.data.source, config.model.name),
                      device=str(next(bundle.model.parameters()).device))
    return Evaluation(evaluate=lambda model: flat_metrics(ev.evaluate(model, 0)))  # no retain reference


class LkfBenchmark(TrainingDefaults):
    """LKF: real lesser-known facts the model already knows (nmndeep/LKF-*; lkf-mini made from tofu-mini's facts)."""

    name, title, mini = "lkf", "LKF", "lkf-mini"
    eval_settings = LkfEvalConfig
    metric_aliases = QA_ALIASES
    default_objectives = ({"name": "forget_Q_A_ROUGE_worst", "mode": "min"},
                          {"name": "retain_Q_A_ROUGE", "mode": "max"},
                          {"name": "gibberish_rate", "mode": "min"})
    split_label = "LKF split"

    def data_defaults(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"source": "lkf-mini", **LKF_TRAIN_DEFAULTS, **raw}

    def check_split(self, field: str, value: Any) -> None:
        if field == "forget_split" and value not in ("forget_standard", "forget_train_para"):
            raise ValueError("LKF unlearns forget_standard (or forget_train_para, with paraphrased questions)")
        if field == "retain_split" and value not in ("retain_standard", "retain_train_para"):
            raise ValueError("LKF's retain sets are retain_standard and retain_train_para")
        if field == "corpus":
            no_corpus(value)

    def source(self, data: Any, model_name: str) -> Any:
        return lkf_source(data.source, model_name)

    def examples(self, data: Any, tokenizer: Any, template: Any, source: Any, with_idk: bool, seed: int) -> Any:
        from unlearning.data.lkf import load_lkf

        return qa_examples(tokenizer, template, load_lkf(data.forget_split, source)[: data.limit],
                           load_lkf(data.retain_split, source), data.max_length, with_idk, seed)

    def hub_dataset(self, data: Any) -> str | None:
        return None  # several nmndeep/LKF-* datasets, found by the loader

    def zoo_data(self, size: str) -> tuple[str, Path]:
        from unlearning.models.zoo import zoo_data_dir

        return "tofu-mini", zoo_data_dir(size)  # lkf-mini is made from tofu-mini's data

    def metric_names(self) -> tuple[str, ...]:
        return (*LKF_METRICS, *QA_ALIASES)

    def retain_model_for(self, config: Any) -> str | None:
        return None  # LKF has no retain model

    def eval_hook(self, config: Any, bundle: Any) -> Callable[[Any, float], dict[str, Any]]:
        return make_lkf_eval_hook(config, bundle)

    def evaluation(self, config: Any, bundle: Any, **reference: Any) -> Evaluation:
        return lkf_evaluation(config, bundle, **reference)

    def derives_retain(self, source: str) -> bool:
        return False  # LKF has no retain model

    def check_eval(self, spec: Any, settings: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        """eval.settings validate as LKF settings and select every metric the objectives and conditions read."""
        settings = dict(settings)
        for key in ("retain_model", "retain_logs", "forget_split"):
            if key in settings:
                raise ConfigError("spec", field=f"eval.settings.{key}", value=settings[key],
                                  fix="LKF is evaluated on forget_eval_para / retain_eval_para without a retain "
                                      "model: remove it")
        check_selected_metrics(spec, self, settings, skip=skip)

    def check_model_refs(self, spec: Any, i: int, m: Any) -> None:
        """No retain reference on LKF; on lkf-mini the model is a tofu-mini zoo model (its target knows the facts)."""
        no_retain_model_on_tofu_facts(spec, i, m, self, "forgetting is measured on the answers", "nmndeep/LKF-*")

    def open_unlearning_args(self, data: Any, model: Any, trainer: str, task_name: str) -> list[str]:
        self.exportable(data)
        raise NotExportable("LKF runs in JensUn's open-unlearning fork (configs/experiment/unlearn/lkf/), whose "
                            "settings this export does not map; replay the config with `unlearn-sweep train`")


    # ---- `unlearn-sweep eval` ----------------------------------------------------------------------
    cli_choices = ("lkf-mini", "lkf")
    headline = ("forget_Q_A_ROUGE", "forget_Q_A_ROUGE_worst", "forget_leak_rate", "retain_Q_A_ROUGE",
                "forget_Q_A_gibberish", "forget_Q_A_gibberish_rate")

    def cli_evaluator(self, choice: str, model: str, o: Mapping[str, Any]) -> Any:
        from unlearning.evaluation.lkf_eval import LkfEvaluator
        from unlearning.models.loading import load_bundle

        no_retain = (None, "LKF has no retain model: remove it")
        refuse_eval_options(o, {"retain_logs": no_retain, "retain_model": no_retain})
        settings = dict(o["settings"])
        if o["max_new_tokens"] is not None:
            settings["max_new_tokens"] = o["max_new_tokens"]
        cfg = lkf_eval_config(settings, where="unlearn-sweep eval")
        bundle = load_bundle(model, dtype=o["dtype"], device=o["device"], template=o["template"])
        source = lkf_source(o["data"] or (self.mini if choice == self.mini else "hub"), model)
        return bundle, LkfEvaluator(bundle.tokenizer, bundle.template, cfg, source, device=o["device"])


LKF = LkfBenchmark()
