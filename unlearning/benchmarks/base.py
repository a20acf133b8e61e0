"""The `Benchmark` protocol: what a benchmark owns, and the helpers its modules share (docs/contributing.md).

    from unlearning.benchmarks.registry import get_benchmark
    bench = get_benchmark(config.data.benchmark)          # a TrainingBenchmark (tofu, muse, lkf, wmdp)
    source = bench.source(config.data, config.model.name)  # its data: the generated mini, the hub, a folder
    forget, retain, idk = bench.examples(config.data, tokenizer, template, source, with_idk=False, seed=0)
    hook = bench.eval_hook(config, bundle)                 # hook(model, epoch) -> {metric: value}

A benchmark module defines one class that satisfies `Benchmark` (a `TrainingBenchmark`, an `AddonBenchmark`
read beside another's evaluation, or both: WMDP) and is listed in `registry.BENCHMARKS`. The train config (`data.benchmark`),
the data loader, the evaluation hook, the sweep spec's checks, the sweep driver's shared work, export and the
eval CLI look the benchmark up there instead of branching on its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from unlearning.errors import ConfigError, UserError

Items = list[dict[str, list[int]]]  # tokenised examples: input_ids, attention_mask, labels
Hook = Callable[[Any, float], dict[str, Any]]


@dataclass
class Evaluation:
    """A prepared evaluation for the sweep driver: `evaluate(model)` -> flat metrics; `reference_dir`: the folder
    of the retain reference every trial loads (None when the benchmark has none)."""

    evaluate: Callable[[Any], dict[str, Any]]
    reference_dir: str | None = None


class NotExportable(Exception):
    """A config has no open-unlearning command line (the message says why)."""


@runtime_checkable
class Benchmark(Protocol):
    """What every benchmark has. A benchmark a run trains on (`trains`) is also a `TrainingBenchmark`; one read
    beside another's evaluation through a block of its `eval.settings` (`settings_key`) is an `AddonBenchmark`."""

    name: str                      # its name: the value of `data.benchmark` (tofu, muse, lkf), or wmdp
    title: str                     # how the docs and messages write it (TOFU, MUSE, ...)
    mini: str | None               # its generated data as a `data.source` (tofu-mini), None without one
    trains: bool                   # whether `data.benchmark` may name it (every benchmark now; WMDP is also an add-on)
    settings_key: str | None       # an add-on's block in another benchmark's eval.settings; None otherwise
    eval_settings: type            # the pydantic model of its settings (`eval.settings`, or its block)
    metric_aliases: Mapping[str, tuple[str, str]]   # short names -> (metric to select, entry reported)
    default_objectives: Sequence[Mapping[str, Any]]  # a sweep's objectives when the spec names none


@runtime_checkable
class AddonBenchmark(Benchmark, Protocol):
    """A benchmark read beside a training benchmark's evaluation (WMDP's `lm_eval:` block)."""

    def parse(self, block: Any, where: str) -> Any:
        """Its block of `eval.settings`, validated (one-line ConfigError naming `<settings_key>.<field>`)."""

    def addon(self, cfg: Any, tokenizer: Any, source: Any, forget_split: str) -> Any:
        """Its evaluator beside the run's own: `.evaluate(model)` -> flat metrics."""

    def addon_metrics(self, spec: Any, cfg: Any) -> tuple[str, ...]:
        """The metrics its block reports, for a sweep spec's objectives (and the spec checks that follow)."""


@runtime_checkable
class TrainingBenchmark(Benchmark, Protocol):
    """A benchmark a run trains on: its data, training examples, evaluation, spec checks, export and CLI."""

    split_label: str               # what a split file of it is called in messages ("TOFU split")

    # ---- data -----------------------------------------------------------------------------------
    def data_defaults(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """The train config's `data:` with this benchmark's defaults for the fields left out."""

    def check_split(self, field: str, value: Any) -> None:
        """`forget_split` / `retain_split` / `corpus` of the data section: ValueError with the fix if wrong."""

    def source(self, data: Any, model_name: str) -> Any:
        """Where the run's data is (a folder or a hub id) for a `data:` section."""

    def examples(self, data: Any, tokenizer: Any, template: Any, source: Any, with_idk: bool,
                 seed: int) -> tuple[Items, Items, Items | None]:
        """The tokenised (forget, retain, IDK alternates or None) training examples."""

    def data_label(self, source: str) -> str:
        """The data's name in reports and MLflow tags: the mini's name on generated data, else the benchmark's."""

    def forget_split_file(self, data: Any) -> str:
        """The file (under a local source) that must hold the forget split (`sweeps.operations.preflight`)."""

    def hub_dataset(self, data: Any) -> str | None:
        """The hub dataset `data.source: hub` reads (None: several, found by the loader)."""

    def zoo_data(self, size: str) -> tuple[str, Any]:
        """(the zoo whose generated data `<mini>-<size>` is or is made from, that data's folder)."""

    # ---- evaluation -----------------------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        """Metrics an objective or constraint may name (the evaluator's and the short aliases)."""

    def eval_hook(self, config: Any, bundle: Any) -> Hook:
        """hook(model, epoch) -> flat metrics, for a train config with `eval.enabled`."""

    def evaluation(self, config: Any, bundle: Any, *, retain_logs: str | None = None,
                   retain_model: str | None = None, cache_dir: Any = None) -> Evaluation:
        """The sweep driver's evaluation of the target (epoch 0) and its retain reference, prepared once."""

    def retain_model_for(self, config: Any) -> str | None:
        """The retain model a train config is evaluated against (settings', else the zoo's, else None)."""

    # ---- sweep spec -----------------------------------------------------------------------------
    def derives_retain(self, source: str) -> bool:
        """Whether the retain reference comes with the data (a zoo mini), so no model needs one given."""

    def check_eval(self, spec: Any, settings: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        """The spec's `eval.settings` (`settings`: without the add-ons' blocks) validate as this benchmark's and
        select what the objectives read (the names in `skip` are the add-ons')."""

    def check_source(self, spec: Any, minis: Mapping[str, str]) -> None:
        """`data.source` names data of this benchmark (`mini_source_check`); `minis`: every mini -> its benchmark."""

    def objectives_for(self, data: Any) -> Sequence[Mapping[str, Any]]:
        """A sweep's objectives when the spec names none, for its `data:` (`default_objectives` unless they
        depend on the data: WMDP's name the corpus' task)."""

    def check_model_refs(self, spec: Any, i: int, model: Any) -> None:
        """`models.<i>` and its retain reference suit this benchmark (the derived retain model filled in)."""

    def plan_settings(self, spec: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """The eval settings of a search's base train config (TOFU adds the forget split)."""

    def smoke_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The eval settings of the spec's smoke test (short generations)."""

    def open_unlearning_args(self, data: Any, model: Any, trainer: str, task_name: str) -> list[str]:
        """The benchmark's part of open-unlearning's `src/train.py` command line; NotExportable if none."""


    # ---- `unlearn-sweep eval` ----------------------------------------------------------------------
    cli_choices: tuple[str, ...]   # its names for `unlearn-sweep eval --benchmark` (tofu-mini, tofu)
    headline: tuple[str, ...]      # the metrics the eval command prints

    def cli_evaluator(self, choice: str, model: str, opts: Mapping[str, Any]) -> Any:
        """The evaluator `unlearn-sweep eval` runs (`.evaluate(model)`, `.write(results, out)`); `opts`: the
        command's options (data, forget_split, retain_logs, retain_model, settings, max_new_tokens, question_key,
        template, dtype, device, log)."""


class TrainingDefaults:
    """What most training benchmarks share (their generated data is `<mini>[-<size>]`; a question/answer smoke
    test); a benchmark class inherits it and overrides what differs."""

    trains = True
    settings_key = None

    def data_label(self, source: str) -> str:
        return self.mini if source.startswith(self.mini) else self.name

    def derives_retain(self, source: str) -> bool:
        return source.startswith(self.mini)

    def forget_split_file(self, data: Any) -> str:
        return data.forget_split

    def check_source(self, spec: Any, minis: Mapping[str, str]) -> None:
        mini_source_check(spec, self, minis)

    def objectives_for(self, data: Any) -> Sequence[Mapping[str, Any]]:
        return self.default_objectives

    def plan_settings(self, spec: Any, settings: dict[str, Any]) -> dict[str, Any]:
        return settings

    def smoke_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return {**settings, "max_new_tokens": min(int(settings.get("max_new_tokens", 16)), 16)}

    def exportable(self, data: Any) -> None:
        """NotExportable on the generated data: the zoo's models and data are not on the hub."""
        if data.source.startswith(self.mini):
            raise NotExportable(f"the model and {self.data_label(data.source)} are the embedded zoo's (not on the "
                                "hub); the same config on a hub model (data.source: hub) prints its open-unlearning "
                                "command line")


# --------------------------------------------------------------------------------------------------
# helpers the benchmark modules share

REFERENCE_KEYS = ("retain_logs", "retain_model")  # where a retain reference is given (eval.settings / models:)


def is_mini(source: str, mini: str | None) -> bool:
    """Whether `data.source` names the generated data (`tofu-mini`, `tofu-mini-<size>`)."""
    return mini is not None and (source == mini or source.startswith(f"{mini}-"))


def split_reference(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(eval.settings without the reference keys, the reference keys: retain_logs, retain_model)."""
    rest = dict(settings)
    return rest, {k: rest.pop(k, None) for k in REFERENCE_KEYS}


def no_reference_in_settings(settings: Mapping[str, Any]) -> None:
    """A spec gives the retain reference per model, never in eval.settings (one-line ConfigError)."""
    for key in REFERENCE_KEYS:
        if key in settings:
            raise ConfigError("spec", field=f"eval.settings.{key}", value=settings[key],
                              fix=f"give the retain reference per model: models: [{{name: ..., {key}: ...}}]")


def zoo_name(spec_field: str, name: str) -> Any:
    """The parsed zoo name (None for other names); a bad zoo name is a ConfigError naming the spec field."""
    from unlearning.models.zoo import parse_zoo_name

    try:
        return parse_zoo_name(name)
    except UserError as exc:
        raise ConfigError("spec", field=spec_field, value=name, fix=exc.fix) from None


def no_retain_model_on_tofu_facts(spec: Any, i: int, model: Any, bench: Any, why: str, hub: str) -> None:
    """The rule of a benchmark read without a retain model whose mini is made from tofu-mini's facts (LKF, WMDP):
    `models.<i>` gives no retain reference (`why`: what the benchmark measures against instead), and on the mini it
    is a tofu-mini zoo model (`hub`: the benchmark's real data, for the fix)."""
    for key in ("retain_model", "retain_logs"):
        if getattr(model, key) is not None:
            raise ConfigError("spec", field=f"models.{i}.{key}", value=getattr(model, key),
                              fix=f"{bench.title} has no retain model ({why}): remove it")
    zoo = zoo_name(f"models.{i}.name", model.name)
    if is_mini(spec.data.source, bench.mini) and (zoo is None or not model.name.startswith("tofu-mini")):
        raise ConfigError("spec", field=f"models.{i}.name", value=model.name,
                          fix=f"{bench.mini} is made from tofu-mini's facts: unlearn a tofu-mini zoo model "
                              f"(tofu-mini/target), or give data.source hub ({hub}) or a folder")


def retain_reference(spec: Any, i: int, model: Any, derived: str | None, storage: str) -> None:
    """The retain-reference rule every benchmark with a retain model follows: on the generated mini the retain
    model is derived (`derived`) when none is given; a model gives retain_model or retain_logs, not both."""
    if derived is not None and model.retain_model is None and model.retain_logs is None:
        model.retain_model = derived
    if model.retain_model is not None and model.retain_logs is not None:
        raise ConfigError("spec", field=f"models.{i}.retain_logs", value=model.retain_logs,
                          fix=f"give either retain_model or retain_logs (its stored {storage}), not both")


def eval_metric_for(name: str, aliases: Mapping[str, tuple[str, str]]) -> str:
    """The metric `eval.settings.metrics` must select for an objective/constraint name."""
    return aliases.get(name, (name,))[0]


def refuse_eval_options(opts: Mapping[str, Any], unused: Mapping[str, tuple[Any, str]]) -> None:
    """`unlearn-sweep eval` options a benchmark has no use for: {option: (its default, fix)}; any option given
    another value is a one-line ConfigError naming it."""
    for key, (default, fix) in unused.items():
        if opts[key] != default:
            raise ConfigError("eval", field=key, value=opts[key], fix=fix)


def check_selected_metrics(spec: Any, bench: Any, settings: Mapping[str, Any],
                           skip: frozenset[str] | set[str] | tuple[str, ...] = frozenset()) -> None:
    """`settings` (eval.settings) validate as the benchmark's settings model and select every metric that the
    spec's objectives, constraints and select.require read (names in `skip` come from elsewhere, e.g. lm-eval);
    one-line ConfigErrors naming the eval.settings field."""
    from unlearning.evaluation.config import parse_config

    try:
        cfg = parse_config(bench.eval_settings, dict(settings), where="eval")
    except UserError as exc:
        raise ConfigError("spec", field=f"eval.settings.{exc.field}", value=exc.value, fix=exc.fix) from None
    chosen = cfg.selected()
    needed = [o.name for o in spec.objectives or []] + [c.metric for c in (*spec.constraints, *spec.select.require,
                                                                            *spec.select.first)]
    for name in (n for n in needed if n not in skip):
        source = eval_metric_for(name, bench.metric_aliases)
        if source not in chosen:
            raise ConfigError("spec", field="eval.settings.metrics", value=list(chosen),
                              fix=f"add '{source}': the objective/constraint '{name}' needs it")


def qa_examples(tokenizer: Any, template: Any, forget_rows: Sequence[Mapping[str, Any]],
                retain_rows: Sequence[Mapping[str, Any]], max_length: int, with_idk: bool,
                seed: int) -> tuple[Items, Items, Items | None]:
    """Question/answer rows tokenised (`encode_qa`); with_idk: each forget question with an "I don't know" answer
    drawn once per example (generator seeded with `seed`, the same on every rank; IdkDPO)."""
    import torch

    from unlearning.data.tokenization import encode_qa
    from unlearning.errors import DataError
    from unlearning.methods.idk_answers import sample_idk_answer

    def encode(rows: Sequence[Mapping[str, Any]], what: str) -> Items:
        out = []
        for i, r in enumerate(rows):
            if "question" not in r or "answer" not in r:
                raise DataError(what, row=i, field="question" if "question" not in r else "answer",
                                value=None, fix="every row needs 'question' and 'answer' strings")
            out.append(encode_qa(tokenizer, template, r["question"], r["answer"], max_length))
        return out

    idk = None
    if with_idk:
        gen = torch.Generator().manual_seed(int(seed))
        idk = [encode_qa(tokenizer, template, r["question"], sample_idk_answer(gen), max_length)
               for r in forget_rows]
    return encode(forget_rows, "forget set"), encode(retain_rows, "retain set"), idk


def text_items(tokenizer: Any, texts: Sequence[str], max_length: int) -> Items:
    """Raw text (MUSE, WMDP) cut into `max_length`-token chunks (`unlearning.data.muse.chunk_corpus`, open-unlearning's
    recipe), each chunk a raw-text item (BOS + text, every text token labelled)."""
    from unlearning.data.muse import chunk_corpus
    from unlearning.data.tokenization import encode_text

    return [encode_text(tokenizer, c, max_length) for c in chunk_corpus(tokenizer, texts, max_length)]


def no_corpus(value: Any) -> None:
    """`data.corpus` names a MUSE or WMDP corpus; on another benchmark it is a mistake."""
    if value is not None:
        raise ValueError("corpus names a MUSE corpus (news, books) or a WMDP one (cyber, bio): set benchmark: muse "
                         "or wmdp, or remove it")


def mini_source_check(spec: Any, bench: Any, minis: Mapping[str, str]) -> None:
    """`data.source` is the benchmark's generated data (`<mini>` or `<mini>-<zoo size>`), `hub`, an existing local
    folder, or a hub dataset id (owner/name); `minis`: every benchmark's mini -> its benchmark (a source of
    another benchmark's mini names that benchmark). Checked before anything that depends on the source."""
    import difflib
    from pathlib import Path

    from unlearning.data.io import _HUB_ID
    from unlearning.models.zoo_names import SIZES

    src, mini = str(spec.data.source), bench.mini
    names = [mini, *(f"{mini}-{s}" for s in SIZES), "hub"]
    usage = (f"give {mini} (the zoo's generated data), {mini}-<size> ({', '.join(sorted(SIZES))}), hub, a folder "
             "of <split>.jsonl files, or a hub dataset id (owner/name)")

    def fail(fix: str) -> None:
        raise ConfigError("spec", field="data.source", value=src, fix=fix)

    if src == "hub" or src == mini:
        return
    if src.startswith(f"{mini}-"):
        if src[len(mini) + 1:] not in SIZES:
            close = difflib.get_close_matches(src, names[1:-1], n=1)
            fail((f"did you mean '{close[0]}'? " if close else "") + f"{mini} sizes are {sorted(SIZES)} "
                 f"(e.g. {mini}-tiny); {mini} alone takes the size of the model's zoo")
        return
    other = next((m for m in minis if m != mini and (src == m or src.startswith(f"{m}-"))), None)
    if other is not None:
        fail(f"{other} is the {minis[other]} benchmark's data: set data.benchmark: {minis[other]}, or use {mini}")
    path = Path(src).expanduser()
    if path.is_dir():
        return
    if path.exists():
        fail(f"{src} is a file: give the folder that holds the <split>.jsonl files")
    if _HUB_ID.match(src) and not src.startswith((".", "~")):
        return  # a hub dataset id (offline, `sweeps.operations.preflight` requires it cached)
    close = difflib.get_close_matches(src, names, n=1, cutoff=0.7)
    fail(("did you mean '" + close[0] + "'? " if close else "no such folder; ") + usage)


def train_attack_schedule(config: Any, selected: Sequence[str], every: int | None) -> Callable[[float], bool]:
    """Which evaluation points of a run get the relearning attack (`robustness.relearn.every`): the start, the
    last point (`train.stop_after_epoch` or `train.epochs`) and every k-th point in between. The attack
    fine-tunes a copy of the module, which ZeRO-3 partitions: refused there (one-line ConfigError)."""
    from unlearning.evaluation.robust_eval import attack_schedule

    if config.train.zero_stage == 3 and any(m.endswith("_relearn") for m in selected):
        raise ConfigError("train config", field="train.zero_stage", value=3,
                          fix="the relearning attack fine-tunes a copy of the module, which ZeRO-3 partitions: "
                              "use zero_stage 0-2 or drop the *_relearn metrics")
    final = config.train.stop_after_epoch or config.train.epochs
    return attack_schedule(config.eval.every, final, every)
