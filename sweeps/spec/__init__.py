"""The sweep spec package: one validated YAML file that says what to search, how, and with what compute
(docs/spec.md). Callers import from here:

    from sweeps.spec import load_spec, parse_spec, SweepSpec, list_presets
    spec = load_spec("tofu-mini")                 # a preset of presets/*.yaml, or a path
    for plan in spec.searches():                  # one search per (model, BalDRO variant)
        plan.search_id, plan.base, plan.space

Modules: model (SweepSpec, parse_spec), sections (models, method variants, budget, resources, search, tracking),
checks (what spans sections: data source, objectives, eval settings, models and retain references, each applying
the benchmark's own check from `unlearning.benchmarks`), errors (one-line pydantic errors), plans (the searches'
base train configs), presets (presets/*.yaml, load_spec).
"""

from sweeps.spec.objectives import Constraint, Objective
from sweeps.spec.checks import _looks_local, check_model_paths
from sweeps.spec.errors import spec_error
from sweeps.spec.model import DEFAULT_STORAGE, MOVED, SET_BY_SWEEP, SweepSpec, parse_spec
from sweeps.spec.plans import SearchPlan, variant_label
from sweeps.spec.presets import PRESET_DIR, first_line_command, list_presets, load_spec, resolve_spec_path
from sweeps.spec.sections import (Budget, MethodSpec, ModelSpec, Resources, SearchSettings, Selection, TrackingSpec,
                                  check_tracking_uri)

__all__ = ["SweepSpec", "SearchPlan", "ModelSpec", "MethodSpec", "Objective", "Constraint", "Budget", "Resources",
           "SearchSettings", "Selection", "TrackingSpec", "load_spec", "parse_spec", "spec_error", "variant_label",
           "list_presets", "resolve_spec_path", "first_line_command", "check_model_paths", "check_tracking_uri",
           "PRESET_DIR", "DEFAULT_STORAGE", "MOVED", "SET_BY_SWEEP", "_looks_local"]
