"""A pinned copy of the default zoo pair, kept in a cache outside git: `prepare` copies it instead of training.

    from unlearning.models.pinned_zoo import pinned_for, install
    pinned = pinned_for(cfg.key(), data_dir)        # None unless a pinned copy for this config is there and verifies
    copied = install(pinned, root, ["target", "retain90"], log)

    .venv/bin/python scripts/pin_zoo.py              # pin this machine's default pair (into the folder below)

Why. The zoo is trained by this project's own code (`unlearning.models.prepare`), but float32 training on a CPU is
not bit-identical across processors: MKL and ATen pick their kernels by instruction set and vendor, the summation
order follows, and 1,880 SFT steps amplify the last bit into a different model. Four machines of this workplace
trained three different default zoos (target forget quality 1.1e-8, 6.7e-16 or 1.0e-11; utility 0.77 to 0.85).
A team that wants every machine to sweep the same two models pins one machine's pair (`tofu-mini/target`,
`tofu-mini/retain90`, 10.4 MB with their tokenizer, a SHA-256 of every file, a fingerprint of the data they were
trained on and their memorisation table) and shares the folder: `$UNLEARN_SWEEP_PINNED_ZOO` (a shared file
system, a CI cache), default `<clone>/.cache/pinned-zoo` (ignored by git: weights do not belong in the
repository). Without a pinned copy `prepare` trains, as always.

What is checked before a pinned model is used (else the model is trained here, with the reason logged): the zoo
config's key (recipe, data version, size, seed) names a pinned folder; the data `prepare` just wrote has the
fingerprint the models were trained on; every file's SHA-256 matches. `unlearn-sweep prepare tofu-mini --force`
deletes the cache and trains here. LMCleaner's zoo log replays the training on the machine it runs on
(`unlearning.models.training_log`): on a processor other than the one that trained the pinned models the replay
ends on a nearby model, and LMCleaner starts from the replay's end (it says how far apart the two are).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from unlearning.paths import REPO_ROOT

PINNED_ENV = "UNLEARN_SWEEP_PINNED_ZOO"
DEFAULT_ROOT = REPO_ROOT / ".cache" / "pinned-zoo"


def pinned_root() -> Path:
    """Where pinned zoos are looked for: $UNLEARN_SWEEP_PINNED_ZOO, else <clone>/.cache/pinned-zoo."""
    return Path(os.environ.get(PINNED_ENV) or DEFAULT_ROOT).expanduser()


RECORD = "pinned.json"
TOKENIZER = "tokenizer"


@dataclass(frozen=True)
class Pinned:
    """A verified pinned zoo: its folder and record (models, hashes, memorisation table, where it was trained)."""

    folder: Path
    record: dict

    @property
    def models(self) -> list[str]:
        return list(self.record["models"])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(data_dir: Path) -> str:
    """SHA-256 over the tofu-mini data files (`*.jsonl` and the config `tofu_mini.json`, names and contents,
    sorted): what the models were trained on."""
    h = hashlib.sha256()
    for path in sorted([*Path(data_dir).glob("*.jsonl"), *Path(data_dir).glob("tofu_mini.json")]):
        h.update(path.relative_to(data_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != RECORD}


def check(folder: Path) -> str | None:
    """Why the pinned folder cannot be used (a missing record, a missing file or a hash mismatch), or None."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"no readable {RECORD} in {folder} ({exc.__class__.__name__})"
    for rel, digest in record.get("sha256", {}).items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if sha256(path) != digest:
            return f"{rel} does not match its SHA-256 (a Git LFS pointer or a damaged checkout?)"
    return None


def pinned_for(key: str, data_dir: Path, root: Path | None = None,
               log: Callable[[str], None] | None = None) -> Pinned | None:
    """The pinned zoo for the config `key` when there is one and it verifies against `data_dir` (the data the
    zoo build just wrote), else None (with the reason logged when a pinned folder exists but cannot be used).
    `root`: where pinned zoos are (default `pinned_root()`)."""
    root = Path(root) if root is not None else pinned_root()
    folders = sorted(Path(root).glob(f"*-{key}")) if Path(root).is_dir() else []
    if not folders:
        return None
    folder = folders[0]
    problem = check(folder)
    record = None if problem else json.loads((folder / RECORD).read_text())
    if record is not None and record.get("data_fingerprint") != data_fingerprint(data_dir):
        problem = "the tofu-mini data written here differs from the data the pinned models were trained on"
    if problem:
        if log:
            log(f"pinned zoo models not used ({problem}): training them here")
        return None
    return Pinned(folder, record)


def install(pinned: Pinned, root: Path, models: Iterable[str], log: Callable[[str], None]) -> list[str]:
    """Copy the pinned tokenizer (when the zoo has none yet) and the pinned ones among `models` into the zoo
    folder `root`; returns the models copied. A zoo whose tokenizer differs from the pinned one gets nothing."""
    tok = root / TOKENIZER
    if not tok.is_dir():
        shutil.copytree(pinned.folder / TOKENIZER, tok)
    elif _files(tok) != _files(pinned.folder / TOKENIZER):
        log("pinned zoo models not used (this zoo's tokenizer differs from theirs): training them here")
        return []
    copied = []
    for name in models:
        if name in pinned.models and not (root / name / "config.json").exists():
            tmp = root / f".{name}.pinned.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(pinned.folder / name, tmp)
            tmp.replace(root / name)   # whole or absent: a reader never sees half a model
            copied.append(name)
    if copied:   # where they were trained: the record's "trained_on"
        log(f"{', '.join(copied)}: the pinned weights of {pinned.folder.parent}, SHA-256 checked (`prepare tofu-mini "
            "--force` trains them here)")
    return copied


def write(zoo_root: Path, models: Iterable[str], manifest: dict, out_root: Path | None = None) -> Path:
    """Pin the models `models` of the prepared zoo at `zoo_root` (with its tokenizer): copies them under
    `out_root/<zoo folder>/` and writes the record (hashes, data fingerprint, memorisation table, machine)."""
    import platform

    import torch

    models = list(models)
    out = Path(out_root if out_root is not None else pinned_root()) / zoo_root.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in (TOKENIZER, *models):
        shutil.copytree(zoo_root / name, out / name)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else \
        platform.processor()
    record = {
        "key": manifest["key"], "config": manifest["config"], "models": models,
        "data_fingerprint": data_fingerprint(zoo_root / "data"),
        "memorisation": {m: manifest["memorisation"][m] for m in models},
        "timings_s": {m: manifest["timings_s"].get(m) for m in models},
        "trained_on": {"cpu": f"{cpu} ({torch.backends.cpu.get_cpu_capability()})", "torch": torch.__version__,
                       "threads": 1},
        "sha256": _files(out),
    }
    (out / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return out
