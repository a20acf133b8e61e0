"""Reading dataset splits from a local folder or the Hugging Face Hub; shared by the TOFU/MUSE/LKF loaders.

A *source* is either an existing local folder (one `<stem>.jsonl` or `<stem>.json` file per split) or a hub
dataset id `owner/name`. Both paths return a `list[dict]` that then goes through the same schema check:

    from unlearning.data.io import HubRef, load_split
    rows = load_split("data/tofu", stem="forget10", what="TOFU split",
                      hub_ref=lambda repo: HubRef(repo, "forget10", "train"), schema=QA)

Local files are parsed with the standard `json` module (no pandas); `datasets` is imported only on the hub
path. A `.jsonl` file holds one JSON object per line; a `.json` file holds a JSON array of objects (JSON
Lines in a `.json` file are accepted too, as the hub's own json loader does).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearning.data.schema import Schema, shown, validate_rows
from unlearning.errors import DataError

SPLIT_FILE_SUFFIXES = (".jsonl", ".json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class HubRef:
    """Arguments for `datasets.load_dataset(repo_id, name=name, split=split)`."""

    repo_id: str
    name: str | None
    split: str

    def where(self) -> str:
        named = f"name={self.name}, " if self.name else ""
        return f"hub dataset {self.repo_id} ({named}split={self.split})"


def resolve_source(source: str | Path) -> Path | str:
    """An existing folder -> its Path; a hub id `owner/name` that is not a local path -> the id (str).

    A `Path`, or a string that cannot be a hub id (absolute, `./x`, `~/x`, no slash), must be an existing
    folder, else DataError.
    """
    text = str(source)
    path = Path(text).expanduser()
    if isinstance(source, Path) or path.exists() or not _HUB_ID.match(text):
        if path.is_dir():
            return path
        if path.exists():
            raise DataError(text, fix="expected a folder holding one <split>.jsonl / <split>.json file per split, "
                                      "got a file; pass its parent folder")
        raise DataError(text, fix="this local data folder does not exist; check the path "
                                  "(or pass a hub dataset id such as 'owner/name')")
    return text


def find_split_file(folder: Path, stem: str, what: str) -> Path:
    """The file for split `stem` in `folder` (`<stem>.jsonl`, else `<stem>.json`), or DataError naming both."""
    candidates = [folder / f"{stem}{suffix}" for suffix in SPLIT_FILE_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(c.relative_to(folder).as_posix() for c in candidates)
    parent = candidates[0].parent
    present = sorted(p.name for p in parent.iterdir() if p.suffix in SPLIT_FILE_SUFFIXES) if parent.is_dir() else []
    there = f"; files there: {', '.join(present[:20])}" if present else "; it has no .jsonl/.json files"
    raise DataError(str(folder), fix=f"no file for {what} '{stem}': looked for {looked} in {folder}{there}")


def _parse_jsonl(text: str, path: Path) -> list[Any]:
    rows: list[Any] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(str(path), row=len(rows), value=shown(line),
                            fix=f"line {lineno} is not valid JSON ({e.msg}); write one JSON object per line") from None
    return rows


def read_rows_file(path: Path) -> list[Any]:
    """The records of one local split file: JSON Lines, or (for `.json`) a JSON array of objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(str(path), fix=f"could not read the file ({e}); check permissions and UTF-8 encoding") from None
    if path.suffix != ".json":
        return _parse_jsonl(text, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _parse_jsonl(text, path)  # JSON Lines saved with a .json suffix
    if not isinstance(data, list):
        raise DataError(str(path), value=shown(data), fix="a .json split file must hold a JSON array of objects")
    return data


def _offline_note() -> str:
    on = [v for v in _OFFLINE_VARS if os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}]
    return f"offline mode is on ({', '.join(f'{v}=1' for v in on)}) and it is not in the local cache" if on else ""


def read_hub_rows(ref: HubRef, local_stem: str | None = None, source: str | None = None) -> list[dict]:
    """Rows of a hub dataset split via `datasets.load_dataset`; any failure becomes a DataError that says the
    hub could not be loaded (unreachable, offline, or a wrong id/config/split) and suggests a local folder.
    `source` is what the user passed (it was not an existing folder), named in the message."""
    local_hint = (f"or save the split as JSON Lines in a local folder "
                  f"(<folder>/{local_stem or ref.split}.jsonl) and pass that folder as the source")
    try:
        import datasets  # heavy; only needed on this path
    except ImportError:
        raise DataError(ref.where(),
                        fix=f"the 'datasets' package is not installed; pip install datasets, {local_hint}") from None
    try:
        ds = datasets.load_dataset(ref.repo_id, name=ref.name, split=ref.split)
    except Exception as e:  # noqa: BLE001 - network, offline, unknown id/config/split: all reported the same way
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        error = error if len(error) <= 300 else error[:297] + "..."
        reason = f"{_offline_note()}; {error}" if _offline_note() else error
        also = f" (and no local folder '{source}' exists)" if source else ""
        raise DataError(ref.where(), fix=f"could not load it from the Hugging Face Hub{also}: {reason}. "
                                         f"Check the network / dataset id, {local_hint}") from None
    return ds.to_list()


def load_split(source: str | Path, *, stem: str, what: str, hub_ref: Callable[[str], HubRef],
               schema: Schema) -> list[dict]:
    """Load one split from `source` (local folder: `<source>/<stem>.jsonl|.json`; hub id: `hub_ref(id)`)
    and validate every row against `schema`. Both paths return list[dict] and raise DataError."""
    src = resolve_source(source)
    if isinstance(src, Path):
        path = find_split_file(src, stem, what)
        rows, where = read_rows_file(path), str(path)
    else:
        ref = hub_ref(src)
        rows, where = read_hub_rows(ref, stem, src), ref.where()
    return validate_rows(rows, schema, where)
