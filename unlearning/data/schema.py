"""Declarative row schemas for dataset splits, and the validator every loader runs.

A `Schema` lists the fields a split's rows must have and their types: a non-empty string, or a list of
non-empty strings (optionally of a fixed length). `validate_rows` checks a whole split and raises
`DataError` at the first bad row, naming the file (or hub id), the 0-based row index, the field, the
value found and how to fix it. Fields a row has beyond the schema are allowed and kept.

    from unlearning.data.schema import Schema, text, text_list, validate_rows
    QA = Schema("qa", (text("question"), text("answer")))
    validate_rows(rows, QA, where="data/forget10.jsonl")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from unlearning.errors import DataError

Kind = Literal["str", "list[str]"]


@dataclass(frozen=True)
class Field:
    """One field of a row: its name, kind, fixed list length (None = any length >= 1), and whether it
    must be present (an optional field may be absent or null; when present it is checked like any other)."""

    name: str
    kind: Kind = "str"
    length: int | None = None
    required: bool = True

    def describe(self) -> str:
        """Human wording of the expected type, used in error messages."""
        if self.kind == "str":
            return "a non-empty string"
        count = f"exactly {self.length}" if self.length is not None else "one or more"
        return f"a list of {count} non-empty strings"


@dataclass(frozen=True)
class Schema:
    """The expected shape of every row of one split; `name` reads well in "every <name> row needs ..."."""

    name: str
    fields: tuple[Field, ...]

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def text(name: str, *, required: bool = True) -> Field:
    """A field holding a non-empty string."""
    return Field(name, "str", None, required)


def text_list(name: str, length: int | None = None, *, required: bool = True) -> Field:
    """A field holding a list of non-empty strings, of exactly `length` items when given."""
    return Field(name, "list[str]", length, required)


class _Shown(str):
    """A pre-rendered, shortened repr: shows long values in messages without flooding them."""

    def __repr__(self) -> str:
        return str(self)


def shown(value: Any, limit: int = 100) -> Any:
    """`value` itself when its repr is short, else a clipped repr (for DataError's `value=`)."""
    r = repr(value)
    return value if len(r) <= limit else _Shown(r[: limit - 1] + "…")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_field(row: dict, f: Field, where: str, i: int, schema: Schema) -> None:
    if f.name not in row or (row[f.name] is None and not f.required):
        if f.required:
            present = ", ".join(sorted(map(str, row))) or "none"
            raise DataError(where, row=i, field=f.name, value=_Shown("<missing>"),
                            fix=f"every {schema.name} row needs field '{f.name}' "
                                f"({f.describe()}); this row has: {present}")
        return
    value = row[f.name]
    if f.kind == "str":
        if not isinstance(value, str):
            raise DataError(where, row=i, field=f.name, value=shown(value),
                            fix=f"'{f.name}' must be {f.describe()}, not {_type_name(value)}")
        if not value.strip():
            raise DataError(where, row=i, field=f.name, value=value,
                            fix=f"'{f.name}' must be {f.describe()}; fill it in or drop the row")
        return
    if not isinstance(value, list):
        raise DataError(where, row=i, field=f.name, value=shown(value),
                        fix=f"'{f.name}' must be {f.describe()}, not {_type_name(value)}")
    if (f.length is not None and len(value) != f.length) or not value:
        want = f.length if f.length is not None else "at least 1"
        raise DataError(where, row=i, field=f.name, value=shown(value),
                        fix=f"'{f.name}' must be {f.describe()} (found {len(value)} items, "
                            f"need {want})")
    for j, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise DataError(where, row=i, field=f"{f.name}[{j}]", value=shown(item),
                            fix=f"every item of '{f.name}' must be a non-empty string")


def validate_rows(rows: Sequence[Any], schema: Schema, where: str) -> list[dict]:
    """Check every row of a split against `schema`; return the rows (as a list) when all pass.

    Raises DataError on an empty split, a row that is not an object, a missing required field, a value
    of the wrong type, an empty string, or a list of the wrong length. `where` names the file or hub id.
    """
    rows = list(rows)
    if not rows:
        raise DataError(where, fix=f"the split has no rows; expected at least one {schema.name} row")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(where, row=i, value=shown(row),
                            fix=f"each row must be a JSON object with fields {list(schema.required_names)}")
        for f in schema.fields:
            _check_field(row, f, where, i, schema)
    return rows
