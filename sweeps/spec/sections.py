"""The sweep-level sections of a sweep spec (models, method variants, budget, resources, search, tracking), each a
pydantic model that refuses unknown keys and raises one-line `ConfigError`s. What a run does (data, method
hyperparameters, training, evaluation) is not restated here: the spec's `data:`, `fixed:` and `eval:` are the
train config's own sections and names (`unlearning.train`); what differs per benchmark (default objectives,
metric names) is the benchmark's (`unlearning.benchmarks`). `sweeps.spec.SweepSpec` assembles everything.

    from sweeps.spec.sections import Resources, SearchSettings, check_tracking_uri
    Resources(cpus=4, gpus=1, workers=2).per_trial()                            # {"cpus": 8, "gpus": 2}
    SearchSettings(sampler="tpe", scheduler="moasha", reduction_factor=3, grace=1)
    check_tracking_uri("file:///tmp/mlruns")                                    # ConfigError: file store
"""

from __future__ import annotations

from typing import Any, Literal, Mapping
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from sweeps.spec.objectives import Constraint
from unlearning.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Upper bounds: a value past them is a typo (an extra zero, milliseconds for seconds) that would otherwise be
# accepted and only hurt hours later. Each error says the bound and its reason.
MAX_TRIALS = 10_000  # per search: every trial is a full unlearning run, and TPE's suggest time grows with history
MAX_TIME_BUDGET_S = 30 * 24 * 3600.0  # 30 days: more is a unit mistake (ms, minutes) and never stops the sweep
MAX_CPUS_PER_WORKER = 512  # one worker is one process on one node: no node has more logical CPUs
MAX_GPUS_PER_WORKER = 16  # one worker is one process on one node: nodes hold at most 8-16 GPUs
MAX_SEED = 2**32 - 1  # Optuna's samplers seed numpy, which refuses seeds outside 0..2**32-1 (mid-sweep)


def at_most(where: str, field: str, value: Any, bound: float, reason: str) -> Any:
    """`value` unchanged, or a one-line ConfigError when it is above `bound` (with the reason)."""
    if value is not None and not isinstance(value, bool) and isinstance(value, (int, float)) and value > bound:
        shown = int(bound) if float(bound).is_integer() else bound
        raise ConfigError(where, field=field, value=value, fix=f"give at most {shown}: {reason}")
    return value


# --------------------------------------------------------------------------------------------------
# sections


class ModelSpec(_Section):
    """A model to unlearn and its retain reference for forget quality.

    name: zoo name (tofu-mini/target), local folder or hub id. retain_model: the model trained without
    the forget split (zoo: derived, e.g. tofu-mini/retain90 for forget10). retain_logs: alternatively a
    stored open-unlearning TOFU_EVAL.json of the retain model."""

    name: str = Field(min_length=1)
    retain_model: str | None = None
    retain_logs: str | None = None


class MethodSpec(_Section):
    """name: a method or reference alias (NPO, DrNPO, GroupSimNPO, ...). baldro: none | g | dv or a list of
    them (one search per variant, e.g. [dv, none] to compare BalDRO-DV with the plain method)."""

    name: str
    baldro: str | list[str | None] | None = None
    _variants: list[str] = PrivateAttr(default_factory=list)
    _base: str = PrivateAttr("")
    _alias_defaults: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "MethodSpec":
        from unlearning.methods.names import canonical_baldro, resolve_method_name

        try:
            alias = resolve_method_name(self.name)
        except ConfigError as exc:
            raise ConfigError("method", field="name", value=self.name, fix=exc.fix) from None
        given = self.baldro if isinstance(self.baldro, list) else [self.baldro]
        if not given:
            raise ConfigError("method", field="baldro", value=[], fix="give at least one variant: none, g or dv")
        variants: list[str] = []
        for v in given:
            try:
                canon = canonical_baldro(v)
            except ConfigError:
                raise ConfigError("method", field="baldro", value=v,
                                  fix="use none, g (BalDRO-G) or dv (BalDRO-DV), or a list of them") from None
            if alias.baldro is not None and self.baldro is not None and canon != alias.baldro:
                raise ConfigError("method", field="baldro", value=v,
                                  fix=f"'{self.name}' already means BalDRO-{alias.baldro.upper()}: drop baldro, "
                                      f"or use the base method '{alias.method}' with a list of variants")
            label = canon or alias.baldro or "none"
            if label in variants:
                raise ConfigError("method", field="baldro", value=v, fix=f"variant '{label}' is listed twice")
            variants.append(label)
        self._variants, self._base, self._alias_defaults = variants, alias.method, dict(alias.defaults)
        return self

    @property
    def base(self) -> str:
        """The canonical base method (DrNPO -> NPO)."""
        return self._base

    @property
    def variants(self) -> list[str]:
        """BalDRO variants searched: "none", "g", "dv"."""
        return list(self._variants)

    @property
    def alias_defaults(self) -> dict[str, Any]:
        """Defaults a reference alias implies (DrWGA: form sequence, beta_dv 2.0)."""
        return dict(self._alias_defaults)


class Budget(_Section):
    """num_trials: trials per search (model x variant). max_concurrent: trials at once, over all the sweep's
    searches (null = as many as the cluster's resources allow). time_budget_s: the sweep's Tune run stops
    after this many seconds (all searches together). max_failures:
    retries of a failed trial (Tune FailureConfig)."""

    num_trials: int = Field(12, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    max_failures: int = Field(1, ge=0)

    @field_validator("num_trials")
    @classmethod
    def _num_trials(cls, v: int) -> int:
        return at_most("budget", "num_trials", v, MAX_TRIALS,
                       "trials per search, each a full unlearning run (TPE slows down with thousands)")

    @field_validator("time_budget_s")
    @classmethod
    def _time_budget(cls, v: float | None) -> float | None:
        return at_most("budget", "time_budget_s", v, MAX_TIME_BUDGET_S,
                       "seconds (30 days); a larger value is usually milliseconds or minutes")


class Resources(_Section):
    """Per trial: `workers` Ray Train workers, each with `cpus` CPUs and `gpus` GPUs (fractions < 1 share
    a GPU). One worker on CPU runs in the Tune function itself (no Ray Train overhead)."""

    cpus: float = Field(1.0, ge=0)
    gpus: float = Field(0.0, ge=0)
    workers: int = Field(1, ge=1)

    @field_validator("workers", mode="before")
    @classmethod
    def _whole(cls, v: Any) -> Any:
        if isinstance(v, float) and not v.is_integer():
            raise ConfigError("resources", field=None, value=v, fix="workers is a whole number of processes (e.g. 2)")
        return v

    @model_validator(mode="after")
    def _possible(self) -> "Resources":
        at_most("resources", "cpus", self.cpus, MAX_CPUS_PER_WORKER,
                "CPUs per worker, and a worker is one process on one node (a trial uses cpus x workers)")
        at_most("resources", "gpus", self.gpus, MAX_GPUS_PER_WORKER,
                "GPUs per worker, and a worker is one process on one node (use workers for more GPUs)")
        if self.cpus == 0 and self.gpus == 0:
            raise ConfigError("resources", field="cpus", value=0, fix="a worker needs at least one CPU or one GPU")
        if self.workers > 1 and self.cpus < 1:
            raise ConfigError("resources", field="cpus", value=self.cpus,
                              fix=f"each of the {self.workers} workers is a process that needs >= 1 CPU: set cpus: 1")
        if self.gpus > 1 and not float(self.gpus).is_integer():
            raise ConfigError("resources", field="gpus", value=self.gpus,
                              fix="GPUs per worker are a fraction below 1 (shared GPU) or a whole number")
        if self.workers > 1 and 0 < self.gpus < 1:
            raise ConfigError("resources", field="gpus", value=self.gpus,
                              fix="multi-worker trials need whole GPUs per worker (NCCL cannot share one GPU)")
        return self

    def per_trial(self) -> dict[str, float]:
        return {"cpus": self.cpus * self.workers, "gpus": self.gpus * self.workers}

    def check_fits(self, available: Mapping[str, float], where: str = "resources") -> None:
        """ConfigError when one trial asks for more than the cluster has (``available``: {"CPU": .., "GPU": ..})."""
        need = self.per_trial()
        for key, res in (("cpus", "CPU"), ("gpus", "GPU")):
            have = float(available.get(res, 0.0))
            if need[key] > have + 1e-9:
                raise ConfigError(where, field=key, value=getattr(self, key),
                                  fix=f"a trial needs {need[key]:g} {res} ({self.workers} workers x "
                                      f"{getattr(self, key):g}) but the cluster has {have:g}: lower {key} or workers")


class SearchSettings(_Section):
    """How a search proposes and stops trials.

    sampler: trajectory (a model of every evaluation point of every trial proposes the configuration with the
    largest expected hypervolume improvement per epoch, `sweeps.search.trajectory_searcher`), Optuna's
    multi-objective samplers tpe (constrained), gp (Gaussian process, constrained), nsga2, random, or grid
    (every combination of the space's discrete values).
    scheduler: none; trajectory (with sampler trajectory: a trial is paused, or stopped, when the chance that
    any of its remaining points is feasible and adds hypervolume falls below `stop_below`, and a paused trial
    continues when it becomes the most promising work, `sweeps.search.scheduling.trajectory`); or moasha
    (multi-objective asynchronous successive halving: trials behind on the Pareto ranking at a rung stop;
    rungs at grace * reduction_factor**k epochs, up to the trial's epochs).
    stop_below, pause: the trajectory scheduler's threshold (a chance, 0..1) and whether it pauses (true) or
    stops (false) a trial below it.
    warm_start: finished sweeps (folders) whose Pareto points are evaluated first (e.g. found on a smaller model).
    concurrent: the sweep's searches (model x variant) share the trial slots at once, each holding about its
    fair share (true, the default); false = in the spec's order, the next search starting when the one before
    has proposed all its trials (`sweeps.search.multiplex`).
    storage: an Optuna RDB URL for clusters; null = sqlite:///<sweep dir>/optuna.db."""

    sampler: Literal["trajectory", "tpe", "gp", "nsga2", "random", "grid"] = "tpe"
    scheduler: Literal["none", "trajectory", "moasha"] = "none"
    stop_below: float = Field(0.1, ge=0, lt=1)
    pause: bool = True
    concurrent: bool = True
    reduction_factor: float = Field(3.0, gt=1)
    grace: float = Field(1.0, gt=0)
    warm_start: list[str] = Field(default_factory=list)
    storage: str | None = None


class Selection(_Section):
    """Which front point `pareto` marks as the knee and `export --pick knee` writes.

    require: conditions in the constraints' grammar (e.g. "forget_quality >= 0.05": TOFU reads a forget quality
    p-value above 0.05 as "indistinguishable from the retain model"). The knee is chosen among the front's
    points that meet every condition; when none does, among the whole front, and the table says so. Unlike
    `constraints`, they do not steer the search or exclude points from the front: a point that forgets less
    can still be the best trade-off on display, it just is not the one recommended.

    first: MUSE's checkpoint-selection rule, conditions in the same grammar (e.g. "forget_knowmem_ROUGE <= 1.0 *
    retain", or the retain model's value written as a number): of each trial only its FIRST evaluation point
    (lowest epoch after unlearning started) that meets them all is a candidate for the knee. MUSE's own
    `knowmem/get_best_forget_quality.py` (jaechan-repo/muse_bench @ 54719c5, README.md "select a single
    checkpoint") keeps, per unlearning run, the first checkpoint whose forget knowmem is <= the retrained model's;
    `first` does the same per trial, then the knee is chosen among those checkpoints that also meet `require`."""

    require: list[Constraint] = Field(default_factory=list)
    first: list[Constraint] = Field(default_factory=list)


_TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_tracking_uri(uri: str) -> str:
    """Accept sqlite (absolute path), an MLflow server or a database URL; refuse the file store."""
    fix_default = "leave tracking.uri empty (sqlite under the sweep folder), or give sqlite:////abs/path/mlflow.db " \
                  "or http://host:5000"
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if scheme in ("", "file") or len(scheme) == 1:  # bare paths, file:, Windows drive letters
        raise ConfigError("tracking", field="uri", value=uri,
                          fix=f"the MLflow file store is deprecated and breaks with parallel trials: {fix_default}")
    if scheme not in _TRACKING_SCHEMES:
        raise ConfigError("tracking", field="uri", value=uri, fix=f"unknown scheme '{scheme}': {fix_default}")
    if scheme == "sqlite":
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not path.startswith("/"):
            raise ConfigError("tracking", field="uri", value=uri,
                              fix="give an absolute sqlite path with four slashes (sqlite:////abs/path/mlflow.db): "
                                  "trials run in other working directories")
    return uri


class TrackingSpec(_Section):
    """MLflow: uri (default: sqlite:///<storage>/<name>/mlflow.db; a server URL for clusters);
    experiment (default: unlearn/<sweep name>)."""

    uri: str | None = None
    experiment: str | None = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        return None if v is None else check_tracking_uri(v)
