"""Strict YAML reading for every config file (sweep specs, search-space presets, train configs).

    from unlearning.yaml_io import read_yaml
    raw = read_yaml("presets/tofu-mini.yaml")       # dict / list / scalar / None (empty file)

Stricter than `yaml.safe_load` in the ways that matter for hand-written configs, every mistake a one-line
`ConfigError` naming the file and the line (or key):

* the file must be UTF-8 (a UTF-8 byte-order mark is fine): a Latin-1 or UTF-16 file names the line of the
  first bad byte instead of a 49-line `UnicodeDecodeError` traceback;
* a key given twice in one mapping (at any depth) is refused: plain YAML lets the last one win silently;
* `1e-5` is a float (YAML 1.1 alone needs `1.0e-5`);
* syntax errors name the line; a tab in the indentation says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from unlearning.errors import ConfigError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice (`path` is the dotted key path, `first`/`second` the lines)."""

    def __init__(self, path: str, value: Any, first: int, second: int):
        self.path, self.value, self.first, self.second = path, value, first, second
        super().__init__(f"duplicate key {path!r} (lines {first} and {second})")


class SpecLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-5` as a float and refuses a key given twice in one mapping (at any depth).

    Duplicates are found on the composed node tree, before any Python object is built, so the error can name
    the full dotted path (`budget.num_trials`, `objectives.1.name`) and both lines."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_duplicates(node, (), set())
        return node


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _check_duplicates(node: yaml.Node, path: tuple[str, ...], seen: set[int]) -> None:
    if id(node) in seen:  # an alias of an anchored node already checked (or a recursive one)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may repeat
                    continue
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in lines:
                    raise DuplicateKeyError(".".join((*path, key_node.value)), _line_text(key_node), lines[ident], line)
                lines[ident] = line
                _check_duplicates(value_node, (*path, key_node.value), seen)
            else:
                _check_duplicates(value_node, (*path, "?"), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, (*path, str(i)), seen)


def _line_text(node: yaml.Node, width: int = 60) -> str:
    """The source line a node starts on, stripped and shortened (what the user sees in the editor)."""
    mark = node.start_mark
    buffer = mark.buffer or ""
    start = buffer.rfind("\n", 0, mark.index) + 1
    end = buffer.find("\n", mark.index)
    text = buffer[start:end if end >= 0 else len(buffer)].replace("\x00", "").strip()
    return text if len(text) <= width else text[:width - 3] + "..."


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_utf8(path: str | Path) -> str:
    """The file's text; ConfigError naming the line of the first byte that is not UTF-8."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            how = "it is UTF-16 (a byte-order mark starts it)"
        else:
            how = f"byte 0x{data[exc.start]:02x} is not UTF-8 (Latin-1 / Windows-1252?)"
        raise ConfigError(str(p), field=f"line {_line_of(data, exc.start)}", value=None,
                          fix=f"save the file as UTF-8: {how}") from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML config file strictly (see the module docstring); None for an empty (or comment-only) file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), value=str(p), fix="give an existing YAML file")
    text = decode_utf8(p)
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    except DuplicateKeyError as exc:
        raise ConfigError(str(p), field=exc.path, value=exc.value,
                          fix=f"the key is given twice (lines {exc.first} and {exc.second}) and YAML would silently "
                              "keep the last one: delete one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        if line is None and isinstance(exc, yaml.reader.ReaderError):  # a control character in the text
            line = text.count("\n", 0, exc.position) + 1
            problem = f"character {exc.character!r} is not allowed in YAML: delete it"
        else:
            problem = str(getattr(exc, "problem", None) or exc).replace("\n", " ")
        if mark is not None and "\t" in _leading(text, mark.line):
            problem += "; indent with spaces: YAML does not allow tabs"
        raise ConfigError(str(p), field=None if line is None else f"line {line}", value=None,
                          fix=f"fix the YAML syntax ({problem})") from None


def _leading(text: str, line: int) -> str:
    """The indentation of a 0-based line (empty past the end)."""
    lines = text.splitlines()
    return re.match(r"[ \t]*", lines[line]).group(0) if line < len(lines) else ""


def read_mapping(path: str | Path, what: str, example: str) -> dict[str, Any]:
    """`read_yaml` for a file that must hold a mapping (a spec, a train config).

    what: "a sweep spec", ...; example: what to start from ("presets/tofu-mini.yaml")."""
    p = Path(path)
    raw = read_yaml(p)
    if raw is None:
        raise ConfigError(str(p), value="", fix=f"the file is empty (or only comments): {what} is a mapping of "
                                                f"keys; start from {example}")
    if not isinstance(raw, dict):
        line = _first_content_line(decode_utf8(p))
        raise ConfigError(str(p), field=f"line {line}", value=type(raw).__name__,
                          fix=f"{what} is a mapping of keys (name: value), not a {type(raw).__name__}; "
                              f"start from {example}")
    return raw


def _first_content_line(text: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return i
    return 1


__all__ = ["SpecLoader", "DuplicateKeyError", "read_yaml", "read_mapping", "decode_utf8"]
