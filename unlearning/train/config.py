"""The validated configuration of one unlearning run (the `unlearn-sweep train CONFIG.yaml` file).

    from unlearning.train.config import load_train_config, TrainConfig, LoopConfig
    cfg = load_train_config("configs/train/npo_tofu_mini.yaml", overrides={"train": {"engine": "torch"}})
    cfg.train.lr, cfg.method.name, cfg.data.forget_split

Sections (every key is optional except model.name and method.name; unknown keys are refused with the
field path and the allowed keys, bad values with the field path and what is expected, all on one line):

    model:  {name, dtype: auto|float32|bfloat16, attn_implementation, template}
    data:   {benchmark: tofu|muse, source, forget_split, retain_split, corpus, max_length, limit}
    method: {name, baldro: null|g|dv, hparams: {...}}        # hparams checked against the method
    train:  {engine: deepspeed|torch, zero_stage, lr, epochs, batch_size, grad_accum,
             warmup_epochs, weight_decay, max_grad_norm, lr_scheduler: linear|constant, seed,
             save_every_steps, keep_checkpoints}      # precision follows the model's dtype
    eval:   {enabled, on_start, every, settings: {...}}   # every: epochs between points (0.5 = twice/epoch)
    output_dir: runs/<name>

Defaults follow open-unlearning's TOFU recipe (docs/methods.md, "Notation and the reference training
recipe"): lr 1e-5, 10 epochs, per-device batch 8,
grad_accum 4, warmup 1 epoch, weight decay 0.01, linear decay, seed 0, max_grad_norm 1.0 (HF default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unlearning.errors import ConfigError, UserError
from unlearning.benchmarks.registry import get_benchmark, trained_names
from unlearning.data.limits import MAX_LENGTH


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    """Which model to unlearn. name: a zoo name (tofu-mini/target), a local folder or a hub id.
    dtype: "auto" = bfloat16 on CUDA, float32 on CPU."""

    name: str
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    attn_implementation: str | None = None
    template: str | None = None


class DataSection(_Section):
    """The forget/retain data. benchmark "tofu" covers real TOFU and the generated tofu-mini.
    source: "tofu-mini" (the zoo's generated data, same size as the model's zoo), "tofu-mini-<size>",
    "hub" (locuslab/TOFU), or a local folder of <split>.jsonl files. retain_split defaults to the
    complement of forget_split (forget10 -> retain90). limit: keep only the first N forget rows (smoke).

    benchmark "muse": MUSE's raw text (next-token loss on chunks of max_length tokens, open-unlearning's MUSE
    recipe). source: "muse-mini" (the muse-mini zoo's corpus, default), "muse-mini-<size>", "hub"
    (muse-bench/MUSE-News or -Books by `corpus`) or a local folder in MUSE's layout; corpus: news | books;
    forget_split: forget (raw/forget); retain_split: retain1 (default, as open-unlearning) or retain2;
    max_length defaults to 2048 (open-unlearning), 256 on muse-mini (its zoo models have 512 positions).

    benchmark "lkf": JensUn's lesser-known facts, question/answer rows trained like TOFU's. source: "lkf-mini"
    (made from tofu-mini's facts, `unlearning.benchmarks.lkf_mini`; default), "lkf-mini-<size>", "hub" (nmndeep/LKF-*)
    or a local folder of <split>.jsonl; forget_split: forget_standard (default) or forget_train_para (with
    paraphrased questions); retain_split: retain_standard (default) or retain_train_para."""

    benchmark: str = "tofu"  # a training benchmark of `unlearning.benchmarks.registry` (read when validated)
    source: str = "tofu-mini"
    forget_split: str = "forget10"
    retain_split: str | None = None
    corpus: str | None = None  # MUSE only: news | books
    max_length: int = Field(512, ge=8, le=MAX_LENGTH)  # MAX_LENGTH: see unlearning.data.limits
    limit: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _benchmark_defaults(cls, data: Any) -> Any:
        """The benchmark's defaults for the fields left out (TOFU's are the field defaults)."""
        if not isinstance(data, Mapping) or data.get("benchmark", "tofu") not in trained_names():
            return data
        return get_benchmark(data.get("benchmark", "tofu")).data_defaults(data)

    @field_validator("benchmark")
    @classmethod
    def _benchmark(cls, v: str) -> str:
        names = trained_names()
        if v not in names:
            raise ValueError("use one of " + ", ".join(f"'{n}'" for n in names[:-1]) + f" or '{names[-1]}'")
        return v

    @field_validator("forget_split", "retain_split")
    @classmethod
    def _split(cls, v: Any, info: Any) -> Any:
        if info.data.get("benchmark") in trained_names():
            get_benchmark(info.data["benchmark"]).check_split(info.field_name, v)
        return v

    @field_validator("corpus")
    @classmethod
    def _corpus(cls, v: str | None, info: Any) -> str | None:
        if v is None or info.data.get("benchmark") not in trained_names():
            return v
        bench = get_benchmark(info.data["benchmark"])
        canonical = getattr(bench, "corpus_name", None)  # benchmarks with named corpora (MUSE, WMDP)
        if canonical is None:
            bench.check_split("corpus", v)
            return v
        try:
            return canonical(v)
        except UserError as exc:
            raise ValueError(exc.fix) from None


class MethodSection(_Section):
    """The unlearning loss: a method name or alias (NPO, DrNPO, GroupSimNPO, ...), an optional BalDRO
    wrapper and the method's hyperparameters (canonical names or the reference code's aliases)."""

    name: str
    baldro: str | None = None
    hparams: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_method(self) -> "MethodSection":
        check_method(self.name, self.baldro, self.hparams)
        return self


class LoopConfig(_Section):
    """How the loop trains (the `train:` section; also what `unlearn()` takes as ``cfg``).

    warmup_epochs is converted to optimizer steps as OU does: floor(warmup_epochs * |forget| /
    (batch_size * grad_accum * world_size)). max_grad_norm 0 disables clipping.
    save_every_steps: also checkpoint every N optimizer steps (epoch ends are always checkpointed when a
    checkpoint dir is given); keep_checkpoints: how many of the newest to keep. Precision follows the
    model's parameter dtype (bfloat16 weights -> DeepSpeed bf16 with fp32 master weights)."""

    engine: Literal["deepspeed", "torch"] = "deepspeed"
    zero_stage: Literal[0, 1, 2, 3] = 0
    lr: float = Field(1e-5, gt=0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1)  # per device (HF's per_device_train_batch_size)
    grad_accum: int = Field(4, ge=1)
    warmup_epochs: float = Field(1.0, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    lr_scheduler: Literal["linear", "constant"] = "linear"
    seed: int = 0
    save_every_steps: int | None = Field(None, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # stop after this epoch while keeping the schedule of `epochs` (replays an earlier epoch of a sweep
    # trial exactly: warmup and linear decay are computed over the trial's full length)
    stop_after_epoch: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _reference_spellings(cls, data: Any) -> Any:
        """The reference code's names of these fields (learning_rate, per_device_train_batch_size, ...)."""
        from unlearning.train.fields import FIELD_ALIASES

        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for alias, name in FIELD_ALIASES.items():
            if alias in out and name in LoopConfig.model_fields:
                if name in out:
                    raise ValueError(f"'{alias}' and '{name}' name the same field: keep one")
                out[name] = out.pop(alias)
        return out

    @field_validator("zero_stage")
    @classmethod
    def _stage_needs_deepspeed(cls, v: int, info: Any) -> int:
        if v != 0 and info.data.get("engine") == "torch":
            raise ValueError(f"ZeRO stage {v} needs engine: deepspeed (plain torch is stage 0)")
        return v

    @model_validator(mode="after")
    def _stop_within_epochs(self) -> "LoopConfig":
        if self.stop_after_epoch is not None and self.stop_after_epoch > self.epochs:
            raise ValueError(f"stop_after_epoch ({self.stop_after_epoch}) must be <= epochs ({self.epochs})")
        return self


class EvalSection(_Section):
    """When the evaluation hook runs; ``settings`` is passed to the evaluator untouched.

    every: epochs between evaluation points (0.5 = twice per epoch, 2 = every other epoch; null = only at the
    end); the last epoch is always evaluated. A fraction is rounded to whole optimizer steps
    (`unlearning.train.schedule`)."""

    enabled: bool = False
    on_start: bool = True
    every: float | None = Field(1.0, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(_Section):
    """One unlearning run: model, data, method, loop, evaluation and where the results go."""

    model: ModelSection
    data: DataSection = Field(default_factory=DataSection)
    method: MethodSection
    train: LoopConfig = Field(default_factory=LoopConfig)
    eval: EvalSection = Field(default_factory=EvalSection)
    output_dir: str = "runs/train"
    # where an exported config came from (sweep, trial, epoch, library versions, topology): recorded, not used
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("output_dir")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("output_dir must be a non-empty path")
        return v


# --------------------------------------------------------------------------------------------------
# method check (no model needed)


def check_method(name: str, baldro: str | None, hparams: Mapping[str, Any]) -> None:
    """Build the method once to validate its name and hyperparameters (ConfigError otherwise).

    JensUn's target_token_ids depend on the tokenizer and are filled in by run.py when absent."""
    from unlearning.methods import build_method
    from unlearning.methods.names import resolve_method_name

    hp = dict(hparams)
    if resolve_method_name(name).method == "JensUn" and "target_token_ids" not in hp:
        hp["target_token_ids"] = [0]
    if baldro is not None:
        hp["baldro"] = baldro
    build_method(name, **hp)


# --------------------------------------------------------------------------------------------------
# loading and one-line errors


def _sub_model(model_cls: Any, loc: tuple[Any, ...]) -> Any:
    """The pydantic model class reached by following ``loc`` from ``model_cls`` (None if not a model)."""
    cls = model_cls
    for part in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        if get_origin(ann) is not None and get_origin(ann) is not Literal:
            ann = next((a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        cls = ann
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def one_line_error(exc: ValidationError, where: str, root: type[BaseModel] = TrainConfig) -> ConfigError:
    """The first pydantic error as a ConfigError naming the dotted field, the value and the fix."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or None
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        parent = _sub_model(root, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        return ConfigError(where, field=field, value=value, fix=f"unknown key; allowed keys here: {allowed}")
    if err["type"] == "missing":
        return ConfigError(where, field=field, value=None, fix="this key is required")
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, UserError):  # raised by the method check: name the method's own field
        return ConfigError(where, field=_method_field(field, ctx_err.field, value), value=ctx_err.value,
                           fix=ctx_err.fix)
    msg = err["msg"].removeprefix("Value error, ")
    if isinstance(value, (dict, list)):
        value = type(value).__name__
    return ConfigError(where, field=field, value=value, fix=msg)


def _method_field(section: str | None, inner: str | None, section_input: Any) -> str | None:
    """Dotted path of a method error: method.name, method.baldro or method.hparams.<key>."""
    if section != "method" or inner is None:
        return section if inner is None else f"{section}.{inner}"
    if inner in ("name", "baldro"):
        return f"method.{inner}"
    return f"method.hparams.{inner}"


def _merge(base: dict, over: Mapping[str, Any]) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def parse_train_config(raw: Any, where: str = "train config",
                       overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Validate a dict (e.g. parsed YAML) into a TrainConfig; one-line ConfigError on any mistake."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where, value=type(raw).__name__, fix="the file must hold a mapping with keys "
                          f"{sorted(TrainConfig.model_fields)}")
    data = _merge(dict(raw), overrides or {})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise one_line_error(exc, where) from None
    except UserError as exc:  # pragma: no cover - pydantic wraps validator errors, kept for safety
        raise ConfigError(where, field=f"method.{exc.field}" if exc.field else "method", value=exc.value,
                          fix=exc.fix) from None


def load_train_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read and validate a train YAML. ``overrides`` is a nested dict merged over the file."""
    from unlearning.yaml_io import read_mapping

    p = Path(path)  # UTF-8, no duplicated keys, a mapping: one-line ConfigError naming the line or key
    raw = read_mapping(p, "a train config", "configs/train/npo_tofu_mini.yaml")
    return parse_train_config(raw, where=str(p), overrides=overrides)
