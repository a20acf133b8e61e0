"""The sweep spec: one validated YAML file that says what to search, how, and with what compute.

    from sweeps.spec import load_spec
    spec = load_spec("sweeps/tofu-mini.yaml")       # or a preset name: load_spec("tofu-mini")
    for plan in spec.searches():                      # one search per (model, BalDRO variant)
        plan.search_id, plan.space.to_optuna(), plan.fixed
    spec.smoke()                                      # the same sweep shrunk to seconds (--smoke-test)

Sections (unknown keys are refused everywhere; every mistake is ONE line naming the field path, the value
and the fix, raised as `unlearning.errors.ConfigError` before any Ray work starts). The file is read strictly
(`unlearning.yaml_io`: UTF-8, no key given twice, a mapping); bounds that matter (token budgets, trial counts,
seeds, the retain reference of forget_quality / privleak on tofu) are checked here, and what only the machine
can tell (CPUs, GPUs, writable storage) by `sweeps.preflight` before the sweep creates anything:

    name: tofu-mini-npo                   # letters, digits, . _ - (the sweep's folder under storage)
    models: [tofu-mini/target]            # or [{name, retain_model, retain_logs}]: one search per model
    benchmark: {name: tofu-mini | tofu | muse, source, corpus, forget_split, limit, max_length}
    method: {name: NPO, baldro: [dv, none]}   # baldro: none | g | dv, or a list (one search per variant)
    fixed: {beta: 0.1, batch_size: 8}     # hyperparameters held fixed (canonical names or aliases)
    search_space: tofu-mini-npo           # a preset of search_spaces/, or inline {lr: {low, high, log}, ...}
    objectives: [{name: forget_quality, mode: max, scale: log}, ...]
    constraints: ["model_utility >= 0.9 * target"]
    budget: {num_trials, max_concurrent, time_budget_s, max_failures}   # num_trials is per search
    resources: {cpus, gpus, workers}      # per worker; a trial has `workers` workers
    deepspeed: {engine: deepspeed | torch, zero_stage: 0-3, dtype: auto | float32 | bfloat16}
    eval: {every: 1, ...}                 # epochs between evaluation points (0.5 = twice per epoch) + evaluator
                                          # settings (unlearning.evaluation.config)
    search: {sampler: tpe | nsga2 | random, storage}   # Optuna sampler; storage default: sqlite beside the sweep
    tracking: {uri, experiment}           # MLflow; default sqlite:///<storage>/<name>/mlflow.db, never the file store
    storage: runs/sweeps                  # local or shared (NFS) folder; the sweep lives in <storage>/<name>
    checkpoints: last | every_epoch | none
    seed: 0

Hyperparameter names: training ones (lr, epochs, batch_size, grad_accum, warmup_epochs, weight_decay,
max_grad_norm, lr_scheduler) and the method's own (see `unlearn-sweep ls`), BalDRO ones (beta_dv, dv_mode,
group_ratio, ...) applying only to the variants that have them. A preset's dimension that none of the
variants has, or that `fixed:` sets, is dropped; an inline one is an error.

The sections are in `sweeps/spec_sections.py`, the one-line error formatting in `sweeps/spec_errors.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from search_spaces.loader import (RESERVED_KEYS, TRAIN_HPARAMS, FloatParam, IntParam, SearchSpace, canonical_name,
                                  default_preset, parse_space, unknown_name_fix)
from sweeps.spec_errors import spec_error
from sweeps.spec_sections import (DEFAULT_OBJECTIVES, MAX_SEED, METRIC_ALIASES, Budget, BenchmarkSpec, Constraint,
                                  DeepSpeedSpec, MethodSpec, ModelSpec, Objective, Resources, SearchSettings,
                                  TrackingSpec, _family, at_most, check_tracking_uri, eval_metric_for, metric_names)
from unlearning.errors import ConfigError, UserError
from unlearning.methods.names import canonicalize
from unlearning.yaml_io import read_mapping

PRESET_DIR = Path(__file__).resolve().parent
DEFAULT_STORAGE = "runs/sweeps"
VARIANTS = ("none", "g", "dv")
RETAIN_METRICS = ("forget_quality", "privleak")  # computed against the retain model's statistics


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------------
# search plans


@dataclass(frozen=True)
class SearchPlan:
    """One search of the sweep: one model x one BalDRO variant, its fixed values and its space."""

    search_id: str  # e.g. "tofu-mini-target.dv"
    model: ModelSpec
    variant: str  # "none" | "g" | "dv"
    method: str  # canonical base method
    label: str  # reference-style name: NPO, DrNPO, GroupNPO
    fixed: dict[str, Any]  # canonical names, this variant's only
    space: SearchSpace  # this variant's dimensions only


def variant_label(method: str, variant: str) -> str:
    """NPO + dv -> DrNPO, + g -> GroupNPO, + none -> NPO (the reference code's class names)."""
    return {"none": method, "dv": f"Dr{method}", "g": f"Group{method}"}[variant]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def accepted_hparams(method: str, variant: str) -> set[str]:
    """Canonical names a (base method, variant) accepts: training ones, the method's, the wrapper's."""
    import dataclasses

    from unlearning.methods.registry import WRAPPER_CONFIGS, method_defaults

    names = set(TRAIN_HPARAMS) | set(method_defaults(method))
    if variant != "none":
        names |= {f.name for f in dataclasses.fields(WRAPPER_CONFIGS[variant])}
    return names - {"baldro"}


def check_method_values(method: str, variant: str, hparams: Mapping[str, Any]) -> None:
    """Build the method once with these (canonical) method hyperparameters: ConfigError on a bad value."""
    from unlearning.methods import build_method

    hp = {k: v for k, v in hparams.items() if k not in TRAIN_HPARAMS}
    if method == "JensUn" and "target_token_ids" not in hp:
        hp["target_token_ids"] = [0]
    build_method(method, baldro=None if variant == "none" else variant, **hp)


def check_train_values(hparams: Mapping[str, Any]) -> None:
    """Validate training hyperparameters against the train config's `train:` section."""
    from unlearning.train.config import LoopConfig

    data = {TRAIN_HPARAMS[k]: v for k, v in hparams.items() if k in TRAIN_HPARAMS}
    try:
        LoopConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        name = next((k for k, f in TRAIN_HPARAMS.items() if f == field), field)
        raise ConfigError("train", field=name, value=err.get("input"), fix=err["msg"]) from None


# --------------------------------------------------------------------------------------------------
# the spec


class SweepSpec(_Section):
    """A validated sweep (see the module docstring for every section)."""

    name: str
    description: str = ""
    models: list[ModelSpec] = Field(min_length=1)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    method: MethodSpec
    fixed: dict[str, Any] = Field(default_factory=dict)
    search_space: str | dict[str, Any] | None = None
    objectives: list[Objective] | None = None
    constraints: list[Constraint] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    eval: dict[str, Any] = Field(default_factory=dict)
    search: SearchSettings = Field(default_factory=SearchSettings)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    storage: str = DEFAULT_STORAGE
    checkpoints: Literal["last", "every_epoch", "none"] = "last"
    seed: int = Field(0, ge=0)  # at most MAX_SEED (see _seed)
    smoke_test: bool = False

    _space: SearchSpace = PrivateAttr(default_factory=SearchSpace)
    _fixed: dict[str, Any] = PrivateAttr(default_factory=dict)
    _source: str | None = PrivateAttr(None)

    # ---- field-level checks ---------------------------------------------------------------------

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ConfigError("spec", field=None, value=v,
                              fix="use letters, digits, '.', '_' and '-' (it names the sweep's folder)")
        return v

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        return [{"name": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v

    @field_validator("benchmark", mode="before")
    @classmethod
    def _benchmark(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        return at_most("spec", "seed", v, MAX_SEED, "Optuna's samplers seed numpy, which takes 0 .. 2**32-1")

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str) -> str:
        if not v.strip():
            raise ConfigError("spec", field=None, value=v, fix="give a folder for the sweep's results")
        if "://" in v:
            raise ConfigError("spec", field=None, value=v,
                              fix="give a local or shared (NFS) folder path; mount a bucket and give its path")
        return str(Path(v).expanduser().resolve())

    # ---- cross-field checks ---------------------------------------------------------------------

    @model_validator(mode="after")
    def _resolve(self) -> "SweepSpec":
        method, variants = self.method.base, self.method.variants
        per_variant = {v: accepted_hparams(method, v) for v in variants}
        label = "/".join(variant_label(method, v) for v in variants)
        fixed, given = self._resolve_fixed(per_variant, label)
        self._space = self._resolve_space(per_variant, label, fixed, given)
        for name in self._space.params:  # a searched value replaces an alias default
            fixed.pop(name, None)
        self._fixed = fixed
        self._check_objectives()
        self._check_eval()
        for i, m in enumerate(self.models):
            self._check_model_refs(i, m)
        self._check_retain_reference()
        names = [m.name for m in self.models]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ConfigError("spec", field="models", value=dup, fix="each model is listed once")
        if self.search.storage is not None and "://" not in self.search.storage:
            raise ConfigError("spec", field="search.storage", value=self.search.storage,
                              fix="give an Optuna RDB URL (postgresql://..., sqlite:////abs/optuna.db) or leave it empty")
        return self

    def _resolve_fixed(self, per_variant: dict[str, set[str]], label: str) -> tuple[dict[str, Any], dict[str, str]]:
        """(canonical fixed values, canonical name -> the key the user wrote); an alias's own defaults
        (DrWGA's beta_dv 2.0) come first. Every variant's method is built once with them."""
        method = self.method.base
        anywhere = set().union(*per_variant.values())
        fixed: dict[str, Any] = dict(self.method._alias_defaults)
        given: dict[str, str] = {}
        for key, value in self.fixed.items():
            name = canonical_name(key)
            if key == "baldro":
                raise ConfigError("spec", field="fixed.baldro", value=value, fix="choose variants with method.baldro")
            if name is None or name not in anywhere:
                raise ConfigError("spec", field=f"fixed.{key}", value=value,
                                  fix=f"{label} has no hyperparameter '{key}'; {unknown_name_fix(key, anywhere)}")
            if name in given:
                raise ConfigError("spec", field=f"fixed.{key}", value=value,
                                  fix=f"'{key}' and '{given[name]}' both set '{name}': keep one")
            fixed[name], given[name] = value, str(key)
        fixed.update(canonicalize({k: v for k, v in fixed.items() if k not in TRAIN_HPARAMS}))  # "nll" -> "NLL"
        for v, accepted in per_variant.items():
            mine = {k: x for k, x in fixed.items() if k in accepted}
            try:
                check_method_values(method, v, mine)
                check_train_values(mine)
            except UserError as exc:
                raise ConfigError("spec", field=f"fixed.{exc.field}" if exc.field else "fixed",
                                  value=exc.value, fix=exc.fix) from None
        return fixed, given

    def _resolve_space(self, per_variant: dict[str, set[str]], label: str, fixed: dict[str, Any],
                       given: dict[str, str]) -> SearchSpace:
        """The search space: preset or inline, checked against the method; both ends of every range (every
        choice) are tried on each variant's method and train config."""
        method = self.method.base
        anywhere = set().union(*per_variant.values())
        raw = self.search_space
        if raw is None:
            raw = default_preset(method, self.benchmark.name)
            if raw is None:
                raise ConfigError("spec", field="search_space", value=None,
                                  fix=f"no preset lists {method}: name one (see `unlearn-sweep ls`) or give it inline")
        try:
            space = parse_space(raw)
        except UserError as exc:
            if exc.where not in ("search space", "spec"):  # a broken preset file: name that file
                raise ConfigError(exc.where, field=exc.field, value=exc.value, fix=exc.fix) from None
            field = "search_space" if isinstance(raw, str) or not exc.field else f"search_space.{exc.field}"
            raise ConfigError("spec", field=field, value=exc.value, fix=exc.fix) from None
        # a preset's dimensions that none of the variants has (group_ratio for [dv, none]) or that `fixed:`
        # sets give way; inline ones are mistakes
        inline = {canonical_name(k) for k in raw if k not in RESERVED_KEYS} if isinstance(raw, Mapping) else set()
        space = space.only(n for n in space.params if n in inline or (n in anywhere and n not in given))
        if not space.params:
            raise ConfigError("spec", field="search_space", value=raw,
                              fix=f"no dimension of this space applies to {label}: give one inline")
        for name, dim in space.params.items():
            if name not in anywhere:
                raise ConfigError("spec", field=f"search_space.{name}", value=name,
                                  fix=f"{label} has no hyperparameter '{name}': remove it (exclude: [{name}]) "
                                      f"or pick another method")
            if name in given:
                raise ConfigError("spec", field=f"search_space.{name}", value=name,
                                  fix=f"'{name}' is both fixed and searched: remove it from one of them")
            ends = dim.bounds()
            for v, accepted in per_variant.items():
                if name not in accepted:
                    continue
                base = {k: x for k, x in fixed.items() if k in accepted}
                for end in ends:
                    try:
                        check_method_values(method, v, {**base, name: end})
                        check_train_values({name: end})
                    except UserError as exc:
                        part = "choices" if not isinstance(dim, (FloatParam, IntParam)) else (
                            "low" if end == ends[0] else "high")
                        raise ConfigError("spec", field=f"search_space.{name}.{part}", value=end, fix=exc.fix) from None
        return space

    def _check_objectives(self) -> None:
        """Default objectives per benchmark; names must be the evaluator's metrics (or gibberish_rate)."""
        allowed = metric_names(self.benchmark.name)
        if self.objectives is None:
            self.objectives = [Objective(**o) for o in DEFAULT_OBJECTIVES[_family(self.benchmark.name)]]
        if not self.objectives:
            raise ConfigError("spec", field="objectives", value=[], fix="give at least one objective")
        seen: set[str] = set()
        for i, obj in enumerate(self.objectives):
            if obj.name not in allowed:
                raise ConfigError("spec", field=f"objectives.{i}.name", value=obj.name,
                                  fix=f"unknown metric; {unknown_name_fix(obj.name, allowed)}")
            if obj.name in seen:
                raise ConfigError("spec", field=f"objectives.{i}.name", value=obj.name, fix="this objective is listed twice")
            seen.add(obj.name)
        for i, con in enumerate(self.constraints):
            if con.metric not in allowed:
                raise ConfigError("spec", field=f"constraints.{i}.metric", value=con.metric,
                                  fix=f"unknown metric; {unknown_name_fix(con.metric, allowed)}")
            if con.relative_to == "retain" and not all(m.retain_model or m.retain_logs or
                                                        self.benchmark.name == "tofu-mini" for m in self.models):
                raise ConfigError("spec", field=f"constraints.{i}.relative_to", value="retain",
                                  fix="give every model a retain_model (or retain_logs), or compare to target")

    def _check_eval(self) -> None:
        from unlearning.evaluation.config import EvalConfig, MuseEvalConfig, parse_config

        settings = dict(self.eval)
        every = settings.pop("every", 1.0)
        if every is not None and (isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0):
            raise ConfigError("spec", field="eval.every", value=every,
                              fix="epochs between evaluation points: a number > 0 (1 = every epoch, 0.5 = twice "
                                  "per epoch) or null (only the last epoch)")
        if self.benchmark.name == "muse":
            cls, where = MuseEvalConfig, "eval"
        else:
            cls, where = EvalConfig, "eval"
            if "forget_split" in settings and settings["forget_split"] != self.benchmark.forget_split:
                raise ConfigError("spec", field="eval.forget_split", value=settings["forget_split"],
                                  fix=f"the evaluator uses benchmark.forget_split ({self.benchmark.forget_split}): remove it")
            settings["forget_split"] = self.benchmark.forget_split
        try:
            cfg = parse_config(cls, settings, where=where)
        except UserError as exc:
            raise ConfigError("spec", field=f"eval.{exc.field}", value=exc.value, fix=exc.fix) from None
        chosen = cfg.selected()
        needed = [o.name for o in self.objectives or []] + [c.metric for c in self.constraints]
        for name in needed:
            source = eval_metric_for(name, self.benchmark.name)
            if source not in chosen:
                raise ConfigError("spec", field="eval.metrics", value=list(chosen),
                                  fix=f"add '{source}': the objective/constraint '{name}' needs it")

    def _check_model_refs(self, i: int, m: ModelSpec) -> None:
        from unlearning.models.zoo import parse_zoo_name

        try:
            zoo = parse_zoo_name(m.name)
        except UserError as exc:
            raise ConfigError("spec", field=f"models.{i}.name", value=m.name, fix=exc.fix) from None
        if self.benchmark.name == "tofu-mini":
            if zoo is None:
                raise ConfigError("spec", field=f"models.{i}.name", value=m.name,
                                  fix="tofu-mini is unlearned from zoo models (tofu-mini/target); use benchmark: tofu "
                                      "for other models")
            if m.retain_model is None and m.retain_logs is None:
                head = m.name.split("/", 1)[0]
                m.retain_model = f"{head}/retain{100 - self.benchmark.forget_percent():02d}"
        if m.retain_model is not None and m.retain_logs is not None:
            raise ConfigError("spec", field=f"models.{i}.retain_logs", value=m.retain_logs,
                              fix="give either retain_model or retain_logs (the reference's stored evaluation), "
                                  "not both")
        if m.retain_model is not None:
            try:
                rz = parse_zoo_name(m.retain_model)
            except UserError as exc:
                raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model, fix=exc.fix) from None
            pct = self.benchmark.forget_percent()
            if rz is not None and pct is not None and rz[1] != f"retain{100 - pct:02d}":
                raise ConfigError("spec", field=f"models.{i}.retain_model", value=m.retain_model,
                                  fix=f"{self.benchmark.forget_split} needs the model trained without it: "
                                      f"{m.retain_model.split('/')[0]}/retain{100 - pct:02d}")

    def _check_retain_reference(self) -> None:
        """forget_quality and privleak compare with the retain model: on tofu (tofu-mini derives it from the zoo)
        every model needs retain_model or retain_logs when an objective or constraint uses one of them.
        Without it they evaluate to null and the search optimises nothing, hours later."""
        if self.benchmark.name != "tofu":
            return
        uses = [f"objective '{o.name}'" for o in self.objectives or [] if o.name in RETAIN_METRICS]
        uses += [f"constraint '{c}'" for c in self.constraints if c.metric in RETAIN_METRICS]
        if not uses:
            return
        for i, m in enumerate(self.models):
            if m.retain_model is None and m.retain_logs is None:
                raise ConfigError("spec", field=f"models.{i}.retain_model", value=None,
                                  fix=f"the {uses[0]} compares {m.name} with the model trained without "
                                      f"{self.benchmark.forget_split}: give retain_model (that model) or retain_logs "
                                      "(its TOFU_EVAL.json), or drop the metric from objectives/constraints")

    # ---- views ------------------------------------------------------------------------------------

    @property
    def space(self) -> SearchSpace:
        """The resolved search space (all variants)."""
        return self._space

    @property
    def fixed_hparams(self) -> dict[str, Any]:
        """Fixed hyperparameters, canonical names (alias defaults such as DrWGA's included)."""
        return dict(self._fixed)

    @property
    def source_path(self) -> str | None:
        return self._source

    def sweep_dir(self) -> Path:
        return Path(self.storage) / self.name

    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{self.sweep_dir() / 'mlflow.db'}"

    def experiment_name(self) -> str:
        return self.tracking.experiment or f"unlearn/{self.benchmark.name}"

    def optuna_storage(self) -> str:
        return self.search.storage or f"sqlite:///{self.sweep_dir() / 'optuna.db'}"

    def searches(self) -> list[SearchPlan]:
        """One plan per (model, variant), in spec order."""
        plans = []
        method = self.method.base
        for m in self.models:
            for v in self.method.variants:
                ok = accepted_hparams(method, v)
                plans.append(SearchPlan(
                    search_id=f"{_slug(m.name)}.{v}", model=m, variant=v, method=method,
                    label=variant_label(method, v), fixed={k: x for k, x in self._fixed.items() if k in ok},
                    space=self._space.only(ok)))
        return plans

    def plan(self, search_id: str) -> SearchPlan:
        for p in self.searches():
            if p.search_id == search_id:
                return p
        raise ConfigError("spec", field="search_id", value=search_id,
                          fix=f"this sweep's searches are {[p.search_id for p in self.searches()]}")

    def smoke(self) -> "SweepSpec":
        """The same sweep shrunk to seconds: first model only, 2 trials per search one at a time, 1 epoch,
        8 forget items, short generations, no retries."""
        data = self.raw()
        data["name"] = self.name if self.name.endswith("-smoke") else f"{self.name}-smoke"
        data["models"] = data["models"][:1]
        data["budget"] = {"num_trials": min(2, self.budget.num_trials), "max_concurrent": 1,
                          "time_budget_s": min(self.budget.time_budget_s or 600.0, 600.0), "max_failures": 0}
        data["fixed"] = {**{k: v for k, v in data.get("fixed", {}).items() if canonical_name(k) != "epochs"},
                         "epochs": 1}
        raw = data.get("search_space") or default_preset(self.method.base, self.benchmark.name)
        raw = {"preset": raw} if isinstance(raw, str) else dict(raw)
        raw = {k: v for k, v in raw.items() if canonical_name(k) != "epochs"}
        if "epochs" in self._space.params and "epochs" in parse_space(raw).params:
            raw["exclude"] = [*raw.get("exclude", []), "epochs"]
        data["search_space"] = raw
        data["benchmark"] = {**data["benchmark"], "limit": min(self.benchmark.limit or 8, 8)}
        data["eval"] = {**data.get("eval", {}), "max_new_tokens": min(int(self.eval.get("max_new_tokens", 16)), 16)}
        data["checkpoints"] = "none"
        data["smoke_test"] = True
        return parse_spec(data, where=f"{self._source or self.name} (smoke test)", source=self._source)

    def raw(self) -> dict[str, Any]:
        """A plain dict that `parse_spec` turns back into this spec (what `to_yaml` writes)."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["method"] = {"name": self.method.name, "baldro": self.method.variants}
        data["constraints"] = [str(c) for c in self.constraints]
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.raw(), sort_keys=False)


# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# loading


def parse_spec(raw: Any, where: str = "sweep spec", source: str | None = None, check_models: bool = False) -> SweepSpec:
    """Validate a mapping into a SweepSpec (one-line ConfigError on the first mistake).

    check_models: also require local model folders to exist (zoo models are trained on demand)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where, value=type(raw).__name__,
                          fix=f"a sweep spec is a mapping with keys {sorted(SweepSpec.model_fields)}")
    try:
        spec = SweepSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise spec_error(exc, where, SweepSpec) from None
    except UserError as exc:  # pragma: no cover - pydantic wraps validator errors
        raise ConfigError(where, field=exc.field, value=exc.value, fix=exc.fix) from None
    spec._source = source
    if check_models:
        check_model_paths(spec, where)
    return spec


def _looks_local(name: str) -> bool:
    """A path (absolute, relative with ./ or ../, ~, or existing) rather than a hub id like org/model."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def check_model_paths(spec: SweepSpec, where: str = "sweep spec") -> None:
    """Zoo names must be valid (unprepared zoo models are trained by the driver before the sweep starts), local
    folders must exist (hub ids are left to the hub)."""
    from unlearning.models.zoo import parse_zoo_name

    for i, m in enumerate(spec.models):
        for key in ("name", "retain_model"):
            name = getattr(m, key)
            if name is None:
                continue
            try:
                zoo = parse_zoo_name(name)
            except UserError as exc:
                raise ConfigError(where, field=f"models.{i}.{key}", value=name, fix=exc.fix) from None
            if zoo is not None:
                continue  # a valid zoo name; the driver trains the model first if it is not prepared yet
            if _looks_local(name) and not (Path(name).expanduser() / "config.json").is_file():
                raise ConfigError(where, field=f"models.{i}.{key}", value=name,
                                  fix="no model folder (with config.json) there: fix the path, or give a hub id "
                                      "like org/model")
        if m.retain_logs is not None and not Path(m.retain_logs).expanduser().is_file():
            raise ConfigError(where, field=f"models.{i}.retain_logs", value=m.retain_logs,
                              fix="give an existing TOFU_EVAL.json of the retain model")


def list_presets() -> list[str]:
    """Names of the sweep presets shipped in sweeps/ (tofu-mini, ...)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_spec_path(path_or_preset: str | Path) -> Path:
    """A path to a spec file, or the name of a preset in sweeps/ (`tofu-mini`)."""
    p = Path(path_or_preset).expanduser()
    if p.is_file():
        return p
    if str(path_or_preset) in list_presets():
        return PRESET_DIR / f"{path_or_preset}.yaml"
    raise ConfigError(str(path_or_preset), value=str(path_or_preset),
                      fix=f"give a spec file or a preset name: {', '.join(list_presets())}")


def load_spec(path: str | Path, check_models: bool = True) -> SweepSpec:
    """Read and validate a sweep spec file (or preset name); ConfigError (one line) on any mistake."""
    p = resolve_spec_path(path)
    raw = read_mapping(p, "a sweep spec", "sweeps/tofu-mini.yaml")  # UTF-8, no duplicated keys, a mapping
    return parse_spec(raw, where=str(p), source=str(p.resolve()), check_models=check_models)


def first_line_command(path: str | Path) -> str:
    """The command of a preset's first-line comment (`# unlearn-sweep run x.yaml   (note)` -> the command);
    text after a run of two or more spaces is a note and is left out."""
    text = Path(path).read_text(encoding="utf-8")
    line = text.splitlines()[0] if text else ""
    return re.split(r"\s{2,}", line.lstrip("#").strip())[0] if line.startswith("#") else ""


__all__ = ["SweepSpec", "SearchPlan", "ModelSpec", "BenchmarkSpec", "MethodSpec", "Objective", "Constraint", "Budget",
           "Resources", "DeepSpeedSpec", "SearchSettings", "TrackingSpec", "METRIC_ALIASES", "DEFAULT_OBJECTIVES",
           "load_spec", "parse_spec", "spec_error", "check_tracking_uri", "variant_label", "list_presets",
           "metric_names", "eval_metric_for", "accepted_hparams"]
