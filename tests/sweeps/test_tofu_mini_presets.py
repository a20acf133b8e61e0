"""The tofu-mini search spaces are calibrated on the committed landscape data: for every method a landscape grid
ran, the search space a tofu-mini sweep of that method gets by default (`search_spaces.loader.default_preset`)
holds the hyperparameters of the run where the method did its best (the highest forget quality among the points
that keep utility >= 0.9x the target's and gibberish <= 0.05 and forget more than the target: LUNAR's best such
point on zoo C, 3.3e-12, is below the target's 1.0e-11), and every landscape method has such a space.

    python -m pytest tests/sweeps/test_tofu_mini_presets.py -q

The data folders are read newest first: a grid run on zoo C (this round's machine,
`benchmarks/data/*-c`) decides over one on an older zoo, and a method's second grid
(`benchmarks/data/methods-calibration`) over its first one. A method with no kept point (PDU, LUNAR and LMCleaner on tofu-mini) only needs a space.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search_spaces.loader import default_preset, load_preset

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
FOLDERS = ("grids-graddiff-npo-c", "methods-calibration-c", "methods-landscape-c", "methods-calibration", "methods-landscape", "landscape-graddiff", "landscape-npo",
           "landscape-drnpo")


def _best_runs() -> dict[str, tuple[str, dict | None]]:
    """base method -> (its data folder, the hparams of its best kept run, or None when no point keeps both)."""
    best: dict[str, tuple[str, dict | None]] = {}
    for folder in FOLDERS:
        path = DATA / folder
        if not (path / "runs.jsonl").is_file():
            continue
        meta = json.loads((path / "landscape.json").read_text())
        goal, target = meta["goal"], meta["target"]
        floor = goal["model_utility_ratio"] * target["model_utility"]
        found: dict[str, tuple[float, dict | None]] = {}
        for line in (path / "runs.jsonl").read_text().splitlines():
            run = json.loads(line)
            kept = [p["forget_quality"] for p in run["points"]
                    if isinstance(p.get("forget_quality"), float) and p.get("model_utility", 0.0) >= floor
                    and (p.get("gibberish_rate") or 0.0) <= goal["gibberish_rate"]
                    and p["forget_quality"] > target["forget_quality"]]   # a point that forgets nothing is no best
            score = max(kept, default=-1.0)
            method = run["base_method"]
            if method not in found or score > found[method][0]:
                found[method] = (score, run["hparams"] if kept else None)
        for method, (_, hparams) in found.items():
            best.setdefault(method, (folder, hparams))  # an earlier (newer) folder decides
    return best


BEST = _best_runs()


def test_the_landscape_data_is_there():
    assert {"NPO", "GradDiff", "T3", "WGA", "SIBL"} <= set(BEST), sorted(BEST)


@pytest.mark.parametrize("method", sorted(BEST))
def test_the_default_tofu_mini_space_holds_the_best_landscape_run(method):
    name = default_preset(method, "tofu-mini")
    assert name is not None and name.startswith("tofu-mini-"), f"{method}: no tofu-mini search space ({name})"
    folder, hparams = BEST[method]
    if hparams is None:
        return  # no point keeps utility and gibberish: the space is where it trades most slowly (its header says)
    space = load_preset(name).params
    shared = [k for k in hparams if k in space]
    assert shared, f"{method}: {name} searches none of the landscape's dimensions {sorted(hparams)}"
    for key in shared:
        dim, value = space[key], hparams[key]
        if dim.type == "categorical":
            assert value in dim.choices, f"{method}: {name}.{key} {dim.choices} misses {value} ({folder})"
        else:
            assert dim.low <= value <= dim.high, f"{method}: {name}.{key} [{dim.low}, {dim.high}] misses {value} ({folder})"
