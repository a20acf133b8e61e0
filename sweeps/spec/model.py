"""The sweep spec model: one validated YAML file that says what to search, how, and with what compute
(docs/spec.md). The package `sweeps.spec` re-exports it with its sections (`sections.py`), checks (`checks.py`),
one-line errors (`errors.py`), search plans (`plans.py`) and the presets (`presets.py`).

    from sweeps.spec import load_spec
    spec = load_spec("presets/tofu-mini.yaml")      # or a preset name: load_spec("tofu-mini")
    for plan in spec.searches():                      # one search per (model, BalDRO variant)
        plan.search_id, plan.base, plan.space         # the complete train config, the searched fields
    spec.smoke()                                      # the same sweep shrunk to seconds (--smoke-test)

What a run does is described in the train config's own words (the `unlearn-sweep train` YAML,
`unlearning.train.config`): `data:` and `eval:` ARE its sections, `fixed:` and `search_space:` name its fields
(`lr`, `epochs`, `batch_size`, `beta`, `alpha`, `beta_dv`, ..., or dotted paths like `method.hparams.beta`;
`unlearning.train.fields`). The sweep adds what only a sweep has:

    name: tofu-mini-npo                   # letters, digits, . _ - (the sweep's folder under storage)
    models: [tofu-mini/target]            # or [{name, retain_model, retain_logs}]: one search per model
    method: {name: NPO, baldro: [dv, none]}   # baldro: none | g | dv, or a list (one search per variant)
    data: {source: tofu-mini, forget_split: forget10, limit: null, max_length: 512}   # train config `data:`
    fixed: {beta: 0.1, batch_size: 8, engine: deepspeed, dtype: float32}          # train-config fields
    search_space: tofu-mini-npo           # a preset of search_spaces/, or inline {lr: {low, high, log}, ...}
    eval: {every: 1, settings: {max_new_tokens: 32, metrics: [...]}}             # train config `eval:`
    objectives: [{name: forget_quality, mode: max, scale: log}, ...]
    constraints: ["model_utility >= 0.9 * target"]
    budget: {num_trials, max_concurrent, time_budget_s, max_failures}   # num_trials is per search
    resources: {cpus, gpus, workers}      # per worker; a trial has `workers` workers
    search: {sampler: trajectory | tpe | gp | nsga2 | random | grid, scheduler: none | trajectory | moasha, stop_below, pause, reduction_factor, grace, warm_start, concurrent, storage}
    tracking: {uri, experiment}           # MLflow; default sqlite:///<storage>/<name>/mlflow.db
    storage: runs/sweeps                  # local or shared (NFS) folder; the sweep lives in <storage>/<name>
    seed: 0

Every mistake is ONE line naming the field path, the value and the fix, raised as
`unlearning.errors.ConfigError` before any Ray work starts. The searches' base configs (`sweeps.spec.plans`) are
built and validated here, once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from search_spaces.loader import RESERVED_KEYS, SearchSpace, default_preset, field_key, parse_space
from sweeps.spec.objectives import Constraint, Objective
from sweeps.spec.checks import (check_data_source, check_eval, check_model_paths, check_model_refs,
                                check_objectives, check_retain_reference)
from sweeps.spec.errors import spec_error
from sweeps.spec.plans import SearchPlan, applies, build_plans, check_field_value, variant_label
from sweeps.spec.sections import (MAX_SEED, Budget, MethodSpec, ModelSpec, Resources, SearchSettings, Selection,
                                  TrackingSpec, at_most)
from unlearning.errors import ConfigError, UserError
from unlearning.train.config import DataSection, EvalSection

DEFAULT_STORAGE = "runs/sweeps"
# sections of the first spec format, and where they went (a spec that still has one gets this fix)
MOVED = {
    "benchmark": "the run's data is the train config's `data:` section, e.g. data: {source: tofu-mini, "
                 "forget_split: forget10} (source: hub or a folder for real TOFU)",
    "deepspeed": "engine, zero_stage and dtype are train-config fields: put them under fixed: "
                 "(e.g. fixed: {engine: deepspeed, zero_stage: 0, dtype: float32})",
    "checkpoints": "removed: every trial checkpoints at each epoch end (it is how a trial resumes)",
}


# train-config fields the sweep sets itself (from `models:` and `method:`), never `fixed:`
SET_BY_SWEEP = {"model.name", "output_dir", "baldro", *(f"method.{f}" for f in MethodSpec.model_fields)}


class SweepSpec(BaseModel):
    """A validated sweep (see the module docstring for every section)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    models: list[ModelSpec] = Field(min_length=1)
    method: MethodSpec
    data: DataSection = Field(default_factory=DataSection)
    fixed: dict[str, Any] = Field(default_factory=dict)
    search_space: str | dict[str, Any] | None = None
    eval: EvalSection = Field(default_factory=EvalSection)
    objectives: list[Objective] | None = None
    constraints: list[Constraint] = Field(default_factory=list)
    select: Selection = Field(default_factory=Selection)
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    search: SearchSettings = Field(default_factory=SearchSettings)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    storage: str = DEFAULT_STORAGE
    seed: int = Field(0, ge=0)  # at most MAX_SEED (see _seed)
    smoke_test: bool = False

    _space: SearchSpace = PrivateAttr(default_factory=SearchSpace)
    _plans: list[SearchPlan] = PrivateAttr(default_factory=list)
    _source: str | None = PrivateAttr(None)
    _overrides: dict[str, tuple[Any, Any]] = PrivateAttr(default_factory=dict)

    # ---- field-level checks ---------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, fix in MOVED.items():
                if key in data:
                    raise ConfigError("spec", field=key, value=key, fix=fix)
        return data

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
        check_data_source(self)  # first: the retain reference and the zoo size depend on it
        method, variants = self.method.base, self.method.variants
        label = "/".join(variant_label(method, v) for v in variants)
        fixed = self._check_fixed(label)
        self._space = self._resolve_space(label, fixed)
        pinned = {k: v for k, v in self._space.fixed.items() if k not in fixed and k not in self._space.params}
        self._overrides = {fixed[k]: (self.fixed[fixed[k]], v) for k, v in self._space.fixed.items()
                           if k in fixed and self.fixed[fixed[k]] != v}
        if pinned:  # the preset's reference recipe (search_spaces/<preset>.yaml `fixed:`), under the spec's own
            self.fixed = {**pinned, **self.fixed}
            self._check_fixed(label)  # the pinned values, checked as the spec's own are
        check_objectives(self)
        check_eval(self)
        for i, m in enumerate(self.models):
            check_model_refs(self, i, m)
        check_retain_reference(self)
        names = [m.name for m in self.models]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ConfigError("spec", field="models", value=dup, fix="each model is listed once")
        if self.search.storage is not None and "://" not in self.search.storage:
            raise ConfigError("spec", field="search.storage", value=self.search.storage,
                              fix="give an Optuna RDB URL (postgresql://..., sqlite:////abs/optuna.db) or leave it empty")
        for i, folder in enumerate(self.search.warm_start):
            if not (Path(folder).expanduser() / "points.jsonl").is_file():
                raise ConfigError("spec", field=f"search.warm_start.{i}", value=folder,
                                  fix="give the folder of a finished sweep (<storage>/<name>, it holds points.jsonl)")
        if self.search.sampler == "grid" and any(not hasattr(d, "choices") for d in self._space.params.values()):
            raise ConfigError("spec", field="search.sampler", value="grid",
                              fix="a grid needs discrete dimensions: give every searched field a list of values")
        if self.search.scheduler == "trajectory" and self.search.sampler != "trajectory":
            raise ConfigError("spec", field="search.scheduler", value="trajectory",
                              fix="the trajectory scheduler reads the trajectory sampler's model: set "
                                  "search.sampler: trajectory, or use scheduler moasha or none")
        self._plans = build_plans(self)
        return self

    def _check_fixed(self, label: str) -> dict[str, str]:
        """Fixed values name train-config fields, each of which applies to at least one variant; returns
        {field name: the key `fixed:` names it by}."""
        keys: dict[str, str] = {}
        for key in self.fixed:
            try:
                name = field_key(key)
            except UserError as exc:
                raise ConfigError("spec", field=f"fixed.{key}", value=self.fixed[key], fix=exc.fix) from None
            if name in keys:
                raise ConfigError("spec", field=f"fixed.{key}", value=self.fixed[key],
                                  fix=f"'{key}' and '{keys[name]}' both set '{name}': keep one")
            if name in SET_BY_SWEEP:
                raise ConfigError("spec", field=f"fixed.{key}", value=self.fixed[key],
                                  fix="the sweep sets this itself: choose models with `models:` and variants with "
                                      "`method.baldro`")
            variants = [v for v in self.method.variants if applies(name, self.method.base, v)]
            if not variants:
                raise ConfigError("spec", field=f"fixed.{key}", value=self.fixed[key],
                                  fix=f"{label} has no hyperparameter '{key}'")
            for v in variants:  # the value itself, on the train config of each variant it applies to
                try:
                    check_field_value(self.method.base, v, key, self.fixed[key])
                except UserError as exc:
                    raise ConfigError("spec", field=f"fixed.{key}", value=self.fixed[key], fix=exc.fix) from None
            keys[name] = str(key)
        return keys

    def _resolve_space(self, label: str, fixed: Mapping[str, str]) -> SearchSpace:
        """The search space: preset or inline; a preset's dimensions that no variant has, or that `fixed:`
        sets, give way; inline ones are mistakes."""
        raw = self.search_space
        if raw is None:
            raw = default_preset(self.method.base, self.data_label)
            if raw is None:
                raise ConfigError("spec", field="search_space", value=None,
                                  fix=f"no preset lists {self.method.base}: name one (see `unlearn-sweep ls`) or "
                                      "give it inline")
        try:
            space = parse_space(raw)
        except UserError as exc:
            if exc.where not in ("search space", "spec"):  # a broken preset file: name that file
                raise ConfigError(exc.where, field=exc.field, value=exc.value, fix=exc.fix) from None
            field = "search_space" if isinstance(raw, str) or not exc.field else f"search_space.{exc.field}"
            raise ConfigError("spec", field=field, value=exc.value, fix=exc.fix) from None
        inline = {field_key(k) for k in raw if k not in RESERVED_KEYS} if isinstance(raw, Mapping) else set()
        variants = self.method.variants

        def usable(n: str) -> bool:
            return any(applies(n, self.method.base, v) for v in variants)

        space = space.only(n for n in space.params if n in inline or (usable(n) and n not in fixed))
        if not space.params:
            raise ConfigError("spec", field="search_space", value=raw,
                              fix=f"no dimension of this space applies to {label}: give one inline")
        for name in space.params:
            if not usable(name):
                raise ConfigError("spec", field=f"search_space.{name}", value=name,
                                  fix=f"{label} has no hyperparameter '{name}': remove it (exclude: [{name}]) "
                                      "or pick another method")
            if name in fixed:
                raise ConfigError("spec", field=f"search_space.{name}", value=name,
                                  fix=f"'{name}' is both fixed and searched: remove it from one of them")
        return space

    # ---- views ------------------------------------------------------------------------------------

    @property
    def benchmark(self) -> Any:
        """The benchmark of `data.benchmark` (`unlearning.benchmarks.registry`)."""
        from unlearning.benchmarks.registry import get_benchmark

        return get_benchmark(self.data.benchmark)

    @property
    def data_label(self) -> str:
        """The data's name in reports and MLflow tags: tofu-mini (the zoo's generated data) or tofu (real TOFU from
        the hub or a folder); muse-mini or muse; lkf-mini or lkf."""
        return self.benchmark.data_label(self.data.source)

    @property
    def retain_derived(self) -> bool:
        """Whether the retain reference comes with the data (a zoo mini: tofu-mini, muse-mini)."""
        return self.benchmark.derives_retain(self.data.source)

    @property
    def space(self) -> SearchSpace:
        """The resolved search space (all variants)."""
        return self._space

    @property
    def recipe_overrides(self) -> dict[str, tuple[Any, Any]]:
        """`fixed:` values of this spec that replace a different value the search-space preset pins as its
        method's reference recipe (e.g. `epochs: 15` over LUNAR's one-epoch recipe): key -> (spec's, preset's)."""
        return dict(self._overrides)

    @property
    def source_path(self) -> str | None:
        return self._source

    def sweep_dir(self) -> Path:
        return Path(self.storage) / self.name

    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{self.sweep_dir() / 'mlflow.db'}"

    def experiment_name(self) -> str:
        return self.tracking.experiment or f"unlearn/{self.name}"

    def optuna_storage(self) -> str:
        return self.search.storage or f"sqlite:///{self.sweep_dir() / 'optuna.db'}"

    def searches(self) -> list[SearchPlan]:
        """One plan per (model, variant), in spec order (built and validated with the spec)."""
        return list(self._plans)

    def plan(self, search_id: str) -> SearchPlan:
        for p in self._plans:
            if p.search_id == search_id:
                return p
        raise ConfigError("spec", field="search_id", value=search_id,
                          fix=f"this sweep's searches are {[p.search_id for p in self._plans]}")

    def smoke(self) -> "SweepSpec":
        """The same sweep shrunk to seconds: first model only, 2 trials per search one at a time, 1 epoch,
        8 forget items, short generations, no retries."""
        data = self.raw()
        data["name"] = self.name if self.name.endswith("-smoke") else f"{self.name}-smoke"
        data["models"] = data["models"][:1]
        data["budget"] = {"num_trials": min(2, self.budget.num_trials), "max_concurrent": 1,
                          "time_budget_s": min(self.budget.time_budget_s or 600.0, 600.0), "max_failures": 0}
        data["fixed"] = {**{k: v for k, v in self.fixed.items() if field_key(k) != "epochs"}, "epochs": 1}
        raw = self.search_space or default_preset(self.method.base, self.data_label)
        raw = {"preset": raw} if isinstance(raw, str) else dict(raw)
        raw = {k: v for k, v in raw.items() if k in RESERVED_KEYS or field_key(k) != "epochs"}
        if "epochs" in self._space.params and "epochs" in parse_space(raw).params:
            raw["exclude"] = [*raw.get("exclude", []), "epochs"]
        data["search_space"] = raw
        data["search"] = {**data.get("search", {}), "scheduler": "none"}
        data["data"] = {**data["data"], "limit": min(self.data.limit or 8, 8)}
        settings = self.benchmark.smoke_settings(dict(self.eval.settings))
        data["eval"] = {**data["eval"], "settings": settings}
        data["smoke_test"] = True
        return parse_spec(data, where=f"{self._source or self.name} (smoke test)", source=self._source)

    def raw(self) -> dict[str, Any]:
        """A plain dict that `parse_spec` turns back into this spec (what `to_yaml` writes)."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["method"] = {"name": self.method.name, "baldro": self.method.variants}
        data["constraints"] = [str(c) for c in self.constraints]
        data["select"] = {"require": [str(c) for c in self.select.require]}
        if self.select.first:
            data["select"]["first"] = [str(c) for c in self.select.first]
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.raw(), sort_keys=False)


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
