"""The sweep presets shipped in presets/*.yaml, and reading a spec file (or a preset by name).

    from sweeps.spec import load_spec, list_presets
    list_presets()                        # ["lkf", "lkf-mini", "muse-books", ..., "tofu-mini", "wmdp-mini"]
    spec = load_spec("tofu-mini")         # a preset name, or a path: load_spec("presets/tofu-mini.yaml")
    first_line_command("presets/tofu-mini.yaml")   # "unlearn-sweep run presets/tofu-mini.yaml"
"""

from __future__ import annotations

import re
from pathlib import Path

from sweeps.spec.model import SweepSpec, parse_spec
from unlearning.errors import ConfigError
from unlearning.yaml_io import read_mapping

PRESET_DIR = Path(__file__).resolve().parents[2] / "presets"  # the presets: presets/*.yaml, beside sweeps/


def list_presets() -> list[str]:
    """Names of the sweep presets shipped in presets/ (tofu-mini, ...)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_spec_path(path_or_preset: str | Path) -> Path:
    """A path to a spec file, or the name of a preset in presets/ (`tofu-mini`)."""
    p = Path(path_or_preset).expanduser()
    if p.is_file():
        return p
    if str(path_or_preset) in list_presets():
        return PRESET_DIR / f"{path_or_preset}.yaml"
    raise ConfigError(str(path_or_preset), value=str(path_or_preset),
                      fix=f"no such spec file; give a spec file or a preset name: {', '.join(list_presets())}")


def load_spec(path: str | Path, check_models: bool = True) -> SweepSpec:
    """Read and validate a sweep spec file (or preset name); ConfigError (one line) on any mistake."""
    p = resolve_spec_path(path)
    raw = read_mapping(p, "a sweep spec", "presets/tofu-mini.yaml")
    return parse_spec(raw, where=str(p), source=str(p.resolve()), check_models=check_models)


def first_line_command(path: str | Path) -> str:
    """The command of a preset's first-line comment (`# unlearn-sweep run x.yaml   (note)` -> the command);
    text after a run of two or more spaces is a note and is left out."""
    text = Path(path).read_text(encoding="utf-8")
    line = text.splitlines()[0] if text else ""
    return re.split(r"\s{2,}", line.lstrip("#").strip())[0] if line.startswith("#") else ""
