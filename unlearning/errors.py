"""User-facing errors: every mistake a user can make is reported as one of these.

A `UserError` names *where* the problem is (file, row, field), *what* value was found and *how to fix
it*; the CLI prints its message on one line and exits with status 2 instead of a traceback.

    raise DataError("retain90.jsonl", row=17, field="answer", value=None,
                    fix="every row needs a non-empty string 'answer'")
"""

from __future__ import annotations

from typing import Any


class UserError(ValueError):
    """A mistake in user input (config, data, paths): shown to the user as a single line."""

    def __init__(self, where: str, *, field: str | None = None, value: Any = None, fix: str, row: int | None = None):
        self.where, self.field, self.value, self.fix, self.row = where, field, value, fix, row
        parts = [where]
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        head = ", ".join(parts)
        shown = "" if value is None and field is None else f": got {value!r}"
        super().__init__(f"{head}{shown}. Fix: {fix}")

    def __reduce__(self):
        # keyword-only arguments: rebuild explicitly so the error pickles and copies (Ray ships it across
        # processes, Tune copies it when it reports a failed trial)
        return _rebuild, (type(self), self.where, self.field, self.value, self.fix, self.row)


def _rebuild(cls: type, where: str, field: str | None, value: Any, fix: str, row: int | None) -> "UserError":
    return cls(where, field=field, value=value, fix=fix, row=row)


class DataError(UserError):
    """A dataset file or split does not match the expected schema."""


class ConfigError(UserError):
    """A YAML config or CLI option is invalid."""
