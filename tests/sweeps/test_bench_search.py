"""bench_search's parser and summaries on a tiny synthetic trace set (no Ray, no replay): searcher names,
committed tables, the per-table and cross-table numbers, the early-stopping saving, the late-bloomer count and
the headline's exact format.

    .venv/bin/python -m pytest tests/sweeps/test_bench_search.py -q
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_search as bs  # noqa: E402
from search_replay import Setup, Trace  # noqa: E402

HEADLINE = re.compile(r"^best: (\S+) reaches (\d\.\d{3}) of the grid's hypervolume at 25% of its trial-epochs "
                      r"\(worst table, median of (\d+) seeds, worst (\d\.\d{3})\); at 15%: (\d\.\d{3})$")


def test_parse_searchers():
    got = bs.parse_searchers("grid, tpe+moasha,trajectory,trajectory+stop,trajectory+trajectory")
    assert got == [("grid", "grid", "none"), ("tpe+moasha", "tpe", "moasha"), ("trajectory", "trajectory", "none"),
                   ("trajectory+stop", "trajectory", "trajectory")]
    assert [n for n, _, _ in bs.parse_searchers(bs.DEFAULT_SEARCHERS)] == bs.DEFAULT_SEARCHERS.split(",")
    for bad in ("tpe+stop", "foo", "tpe+bar", "", "tpe+none"):
        with pytest.raises(SystemExit):
            bs.parse_searchers(bad)


def test_args_and_tables():
    args = bs.parse_args([])
    assert (args.budget, args.seeds, args.at, args.at_early) == (0.5, 5, 0.25, 0.15)
    assert args.searchers == "grid,random,tpe,gp,trajectory,trajectory+stop"
    with pytest.raises(SystemExit):
        bs.parse_args(["--budget", "0.2"])
    every = bs.resolve_tables(None, None, None)
    assert {t.key: t.label for t in every} == {"drnpo": "DrNPO", "graddiff": "GradDiff", "npo": "NPO"}
    assert [t.key for t in bs.resolve_tables("npo,drnpo", None, None)] == ["npo", "drnpo"]
    one = bs.resolve_tables(None, REPO / "benchmarks" / "data" / "landscape-npo", None)
    assert [(t.key, t.label) for t in one] == [("npo", "NPO")]
    for bad in (("nope", None, None), (None, None, "NPO"),
                (None, REPO / "benchmarks" / "data" / "landscape-npo", "DrNPO")):
        with pytest.raises(SystemExit):
            bs.resolve_tables(*bad)


# two tables with the same curves; table B's grid HV is larger, so B is every searcher's worst table (x 0.8)
CURVES = {("random", 0): [(10, 0.4), (20, 1.0), (40, 1.2)],
          ("random", 1): [(10, 0.2), (30, 1.6)],
          ("trajectory", 0): [(5, 1.0), (20, 1.6), (50, 1.8)],
          ("trajectory", 1): [(12, 1.2), (24, 1.8)],
          ("trajectory+stop", 0): [(5, 1.0), (20, 1.8)],
          ("trajectory+stop", 1): [(12, 1.2), (18, 1.8)]}
GRID_TE, HV_A, HV_B = 100, 2.0, 2.5


def traces() -> list[Trace]:
    out = []
    for name, seed in CURVES:
        sampler, _, suffix = name.partition("+")
        out.append(Trace(sampler, "trajectory" if suffix else "none", seed, trials=3 + seed))
    return out


def test_summaries_and_headline():
    ts = traces()
    a = bs.summarise(ts, CURVES, HV_A, GRID_TE, (0.15, 0.25), 0.95)
    b = bs.summarise(ts, CURVES, HV_B, GRID_TE, (0.15, 0.25), 0.95)
    assert a["random"]["at"][0.15]["per_seed"] == [0.2, 0.1]
    assert a["trajectory"]["at"][0.25]["median"] == pytest.approx(0.85)
    assert a["trajectory"]["at"][0.25]["worst"] == pytest.approx(0.8)
    assert a["trajectory+stop"]["final_median"] == pytest.approx(0.9)
    assert a["trajectory"]["reached"] == 0 and a["trajectory"]["to_goal_median"] == float("inf")
    assert a["trajectory"]["trials_median"] == 3.5

    saved = bs.savings(ts, CURVES)
    assert list(saved) == ["trajectory+stop"] and saved["trajectory+stop"]["plain"] == "trajectory"
    assert saved["trajectory+stop"]["per_seed"] == pytest.approx([1 - 20 / 50, 1 - 18 / 24])
    assert saved["trajectory+stop"]["worst"] == pytest.approx(0.25)
    assert "median 42%, worst 25% (>= 30%)" in bs.saving_lines(saved)[0]

    per_table = {"a": a, "b": b}
    overall = bs.across(per_table, 0.25, 0.15)
    assert overall["trajectory+stop"]["worst_table"] == "b"
    assert overall["trajectory+stop"]["median_at"] == pytest.approx(0.72)
    assert overall["random"]["worst_seed_at"] == pytest.approx(0.1 / 1.25)
    marg = bs.margins(per_table, 0.25)
    assert marg["a"]["new"] == "trajectory+stop" and marg["a"]["baseline"] == "random"
    assert marg["a"]["margin"] == pytest.approx(0.6)

    head = bs.headline(overall)
    assert head == ("best: trajectory+stop reaches 0.720 of the grid's hypervolume at 25% of its trial-epochs "
                    "(worst table, median of 2 seeds, worst 0.720); at 15%: 0.440")
    assert HEADLINE.match(head)
    for line in [*bs.table_lines(a, (0.15, 0.25), 0.95, GRID_TE), *bs.summary_lines(overall, marg, 0.25, 0.15)]:
        assert "\n" not in line
    assert bs.finite({0.25: float("inf"), "x": [float("nan"), 1.0]}) == {"0.25": None, "x": [None, 1.0]}


def point(epoch, fq, mu):
    return {"epoch": epoch, "forget_quality": fq, "model_utility": mu, "gibberish_rate": 0.0}


def test_late_bloomer_count():
    setup = Setup.from_spec(bs.DEFAULT_SPEC, {"forget_quality": 1e-10, "model_utility": 0.8, "gibberish_rate": 0.0})
    early_best = [point(e, 0.9 if e == 3 else 1e-3, 0.8) for e in range(1, 11)]  # FQ 0.9 at epoch 3: too early
    late = [point(e, 0.3 if e == 9 else 1e-3, 0.8) for e in range(1, 11)]          # the bloomer: epoch 9
    infeasible = [point(e, 0.5, 0.5) for e in range(1, 11)]                        # better FQ, fails MU >= 0.72
    grid = [{"hparams": {"lr": 1, "epochs": 10}, "points": early_best},
            {"hparams": {"lr": 2, "epochs": 10}, "points": late},
            {"hparams": {"lr": 3, "epochs": 10}, "points": infeasible}]
    bloomer = bs.late_bloomer(grid, setup)
    assert bloomer == {"params": {"lr": 2, "epochs": 10}, "epoch": 9, "forget_quality": 0.3}

    def run(trial, lr, epochs):
        return [{"trial": trial, "params": {"epochs": 10, "lr": lr}, "result": {"epoch": e}}
                for e in range(1, epochs + 1)]

    failed = {"trial": "f", "params": {"lr": 3, "epochs": 10}, "result": {"epoch": 2, "trial_failed": 1}}
    ts = [Trace("random", "none", 0, points=[*run("a", 1, 10), failed, *run("b", 2, 10)]),   # point 19: within 20
          Trace("random", "none", 1, points=[*run("a", 1, 10), *run("c", 3, 5), *run("b", 2, 10)]),  # point 24
          Trace("random", "none", 2, points=[*run("b", 2, 3), *run("a", 1, 10)]),            # b stopped at 3
          Trace("tpe", "none", 0, points=run("b", 2, 10))]
    hits = bs.late_hits(ts, bloomer, budget=20)
    assert hits == {"random": [0], "tpe": [0]}
    line = bs.late_lines(bloomer, hits, {"random": 3, "tpe": 1})[0]
    assert "lr=2, epochs=10 at epoch 9" in line and "random 1/3, tpe 1/1" in line
    assert bs.late_hits(ts, None, 20) == {"random": [], "tpe": []}
    assert "no feasible point" in bs.late_lines(None, {}, {})[0]
