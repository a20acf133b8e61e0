"""Benchmark: the tofu-mini landscape, an exhaustive grid of the sweep's own trials, every evaluation point kept.

    python benchmarks/bench_landscape.py                        # benchmarks/landscape.yaml -> runs/landscape/
    python benchmarks/bench_landscape.py --workers 2 --out runs/landscape --limit 6   # the first 6 runs only
    python benchmarks/bench_landscape.py --report-only          # redraw the table and PNG from what is there
                                                                # (against the target its landscape.json recorded)
    python benchmarks/bench_landscape.py --only IdkDPO,RMU      # some entries only (labels as the report prints)
    python benchmarks/bench_landscape.py --out runs/landscape-methods --report-only --markdown   # the README table

Every combination of a grid entry's values (`benchmarks/landscape.yaml`) is one run: the train config the
sweep would give a trial with those sampled values (`trainables.trial.worker_config`), trained and evaluated
by the same code (`run_train` + the trial's evaluation hook), without Ray. Runs go two at a time (one thread
each) in worker processes; a run that diverges or raises is recorded as failed with its reason (its earlier
points are kept). The grid is resumable: finished runs are read back from `runs.jsonl` and not run again.

Output (in --out; the format is stable, `FORMAT_VERSION`):
* `runs.jsonl`: one JSON object per finished run: {"run_id", "method" (e.g. DrNPO), "base_method",
  "variant", "hparams" (the grid values), "status": ok|failed, "reason", "wall_s", "points": [{"epoch",
  "step", <metric>: value, ...}, ...]} (points after unlearning starts; epoch 0 is the target, in "target");
* `landscape.json`: {"format_version", "base_spec", "goal", "target": {metrics}, "runs": [...]};
* `landscape.csv`: one row per (run, evaluation point): run id, method, the grid values, epoch, step,
  forget_quality, model_utility, model_utility_ratio (to the target), gibberish_rate, forget_truth_ratio,
  and whether the point meets the goal;
* `landscape.png`: forget_quality (log) against model_utility per method, gibberish as colour, the goal
  region drawn.

The goal (from the grid file): forget_quality >= 0.1 at model_utility >= 0.9 x the target's with
gibberish_rate <= 0.05. The last line is the headline:
`N of M grid points reach forget_quality >= 0.1 at model_utility >= 0.9x target with gibberish <= 0.05`
where a grid point is a run (a hyperparameter combination) and it reaches the goal when any of its
evaluation points does; the lines above give the same per method and the count of evaluation points.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar per run, as the CLI

FORMAT_VERSION = 1
RUNS_FILE = "runs.jsonl"
FQ_FLOOR = 1e-20  # the PNG's lowest forget quality (the target is ~1e-11; collapsed GradAscent reaches 1e-41)
METRICS = ("forget_quality", "model_utility", "gibberish_rate", "forget_truth_ratio", "forget_Q_A_ROUGE")


# --------------------------------------------------------------------------------------------------
# the grid


def load_grid(path: Path) -> dict[str, Any]:
    import yaml

    grid = yaml.safe_load(path.read_text(encoding="utf-8"))
    for i, entry in enumerate(grid["grids"]):
        if not isinstance(entry.get("grid"), dict) or not entry.get("method"):
            raise SystemExit(f"{path}: grids.{i} needs 'method' and a 'grid' of value lists")
    return grid


def entry_spec(base_raw: dict[str, Any], entry: dict[str, Any], storage: Path, eval_every: float = 1.0):
    """The sweep spec of one grid entry: the base spec with this method/variant, the grid as its space; the base
    spec's fixed values that apply to this method (and are not gridded) are kept."""
    from search_spaces.loader import field_key
    from sweeps.spec.plans import applies
    from sweeps.spec import parse_spec
    from unlearning.methods.names import resolve_method_name

    variant = entry.get("baldro") or "none"
    method = resolve_method_name(entry["method"]).method
    grid = {field_key(k) for k in entry["grid"]}
    base_fixed = {k: v for k, v in base_raw.get("fixed", {}).items()
                  if applies(k, method, variant) and field_key(k) not in grid}
    raw = {**base_raw, "method": {"name": entry["method"], "baldro": [variant]},
           "fixed": {**base_fixed, **entry.get("fixed", {})},
           "search_space": {k: list(v) for k, v in entry["grid"].items()},
           "search": {**base_raw.get("search", {}), "sampler": "grid", "scheduler": "none"},
           "eval": {**base_raw.get("eval", {}), "every": eval_every},  # every point of the run, whatever the sweep's
           "storage": str(storage), "name": "landscape"}
    return parse_spec(raw, where=f"landscape grid entry {entry['method']}")


def run_id(label: str, hparams: dict[str, Any]) -> str:
    blob = json.dumps({"method": label, **hparams}, sort_keys=True)
    return f"{label}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def plan_runs(grid: dict[str, Any], out: Path) -> tuple[list[tuple[Any, Any]], list[dict[str, Any]]]:
    """([(spec, plan) per grid entry], every run: {"run_id", "label", "variant", "hparams", "entry"})."""
    from sweeps.spec import load_spec

    base_raw = load_spec(REPO / grid["base_spec"]).raw()
    entries, runs = [], []
    for i, entry in enumerate(grid["grids"]):
        spec = entry_spec(base_raw, entry, out, entry.get("eval_every", grid.get("eval_every", 1)))
        plan = spec.searches()[0]
        entries.append((spec, plan))
        names = list(entry["grid"])
        for values in itertools.product(*(entry["grid"][n] for n in names)):
            hp = dict(zip(names, values))
            runs.append({"run_id": run_id(plan.label, hp), "label": plan.label, "base_method": plan.method,
                         "variant": plan.variant, "hparams": hp, "entry": i})
    return entries, runs


# --------------------------------------------------------------------------------------------------
# one run (in a worker process)


def _run_one(run: dict[str, Any], base: dict[str, Any], shared: dict[str, Any], out: str,
             objective_names: list[str]) -> dict[str, Any]:
    """The sweep's own trial (`trainables.trial.worker_config` + `run_train`), without Ray."""
    import torch

    from trainables.trial import SWEEP_KEY, sweep_constants, worker_config
    from trainables.worker_loop import make_eval_hook_factory
    from unlearning.train.config import parse_train_config
    from unlearning.train.run import run_train

    torch.set_num_threads(1)
    consts = sweep_constants(base, search_id=run["label"], sweep_dir=out, reference=shared["reference_dir"],
                             inputs_cache=shared["inputs_dir"],
                             resources={"cpus": 1, "gpus": 0, "workers": 1, "max_failures": 0},
                             objective_names=objective_names)
    worker = worker_config({SWEEP_KEY: consts, **run["hparams"]}, run["run_id"])
    run_dir = Path(worker["train"]["output_dir"])
    points: list[dict[str, Any]] = []
    record = {k: run[k] for k in ("run_id", "label", "base_method", "variant", "hparams")}
    t0 = time.perf_counter()
    try:
        cfg = parse_train_config(worker["train"], where="landscape run")
        run_train(cfg, eval_hook_factory=make_eval_hook_factory(worker), resume=False,
                  on_eval=lambda rec: points.append({k: v for k, v in rec.items() if k != "node_id"}),
                  inputs_cache=worker["inputs_cache"])
        record.update(status="ok", reason=None)
    except Exception as exc:  # noqa: BLE001 - a failed run is a result of the grid, with its reason
        record.update(status="failed", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)  # weights and checkpoints are not kept (disk)
    record.update(wall_s=round(time.perf_counter() - t0, 2), points=points)
    return record


# --------------------------------------------------------------------------------------------------
# reading, goal, report


def read_runs(out: Path) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    path = out / RUNS_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                runs[rec["run_id"]] = rec
            except (ValueError, KeyError):
                continue  # a line cut by a killed run: that run is simply run again
    return runs


def meets(point: dict[str, Any], target: dict[str, float], goal: dict[str, float]) -> bool:
    fq, mu, gib = (point.get(k) for k in ("forget_quality", "model_utility", "gibberish_rate"))
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (fq, mu, gib)):
        return False
    return (fq >= goal["forget_quality"] and mu >= goal["model_utility_ratio"] * target["model_utility"]
            and gib <= goal["gibberish_rate"])


def headline(goal: dict[str, float]) -> str:
    return (f"forget_quality >= {goal['forget_quality']:g} at model_utility >= {goal['model_utility_ratio']:g}x "
            f"target with gibberish <= {goal['gibberish_rate']:g}")


def summarise(runs: list[dict[str, Any]], target: dict[str, float], goal: dict[str, float]) -> list[str]:
    lines = []
    labels = list(dict.fromkeys(r["label"] for r in runs))
    reach_all = 0
    for label in labels:
        mine = [r for r in runs if r["label"] == label]
        reach = [r for r in mine if any(meets(p, target, goal) for p in r["points"])]
        n_points = sum(len(r["points"]) for r in mine)
        good_points = sum(meets(p, target, goal) for r in mine for p in r["points"])
        failed = sum(r["status"] != "ok" for r in mine)
        best = max((p for r in mine for p in r["points"]
                    if isinstance(p.get("model_utility"), (int, float))
                    and p["model_utility"] >= goal["model_utility_ratio"] * target["model_utility"]
                    and isinstance(p.get("gibberish_rate"), (int, float))
                    and p["gibberish_rate"] <= goal["gibberish_rate"]),
                   key=lambda p: p.get("forget_quality") or 0.0, default=None)
        best_txt = f"{best['forget_quality']:.3g}" if best else "none"
        lines.append(f"{label:>12}: {len(reach)} of {len(mine)} grid points reach the goal ({good_points} of "
                     f"{n_points} evaluation points; {failed} failed runs); best forget_quality at kept utility "
                     f"and gibberish: {best_txt}")
        reach_all += len(reach)
    lines.append(f"{reach_all} of {len(runs)} grid points reach {headline(goal)}")
    return lines


def markdown_table(runs: list[dict[str, Any]], target: dict[str, float], goal: dict[str, float],
                   grids: dict[str, list[dict[str, list]]]) -> list[str]:
    """The README's per-method table: runs reaching the goal, the best forget quality among points that keep
    utility (>= the goal's ratio x target) and gibberish (<= the goal's rate), with that point's utility ratio,
    gibberish and hyperparameters, and the best forget quality at any utility (what the method can do at all)."""
    mu_floor = goal["model_utility_ratio"] * target["model_utility"]

    def num(p: dict[str, Any], k: str) -> float | None:
        v = p.get(k)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    lines = ["| method | grid | runs reaching the goal | best forget_quality at kept utility and gibberish "
             "(utility / target, gibberish, at) | best forget_quality at any utility (utility / target, gibberish) |",
             "|---|---|---|---|---|"]
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label]
        pts = [(r, p) for r in mine for p in r["points"] if num(p, "forget_quality") is not None
               and num(p, "model_utility") is not None]
        kept = [(r, p) for r, p in pts if p["model_utility"] >= mu_floor
                and (num(p, "gibberish_rate") or 0.0) <= goal["gibberish_rate"]]
        reach = sum(any(meets(p, target, goal) for p in r["points"]) for r in mine)
        failed = sum(r["status"] != "ok" for r in mine)

        def cell(pair: tuple | None, where: bool) -> str:
            if pair is None:
                return "none"
            r, p = pair
            at = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in r["hparams"].items())
            text = (f"{p['forget_quality']:.2g} ({p['model_utility'] / target['model_utility']:.2f}, "
                    f"{num(p, 'gibberish_rate') or 0.0:.2f}")
            return text + (f", {at}, epoch {p['epoch']:g})" if where else ")")

        best_kept = max(kept, key=lambda rp: rp[1]["forget_quality"], default=None)
        best_any = max(pts, key=lambda rp: rp[1]["forget_quality"], default=None)
        grid = "; ".join(" x ".join(f"{k} {v}" for k, v in g.items()) for g in grids.get(label, []))
        lines.append(f"| {label} | {grid} | {reach} of {len(mine)}" + (f" ({failed} failed)" if failed else "")
                     + f" | {cell(best_kept, True)} | {cell(best_any, False)} |")
    return lines


def write_outputs(out: Path, grid: dict[str, Any], target: dict[str, float], runs: list[dict[str, Any]]) -> None:
    goal = grid["goal"]
    (out / "landscape.json").write_text(json.dumps({
        "format_version": FORMAT_VERSION, "base_spec": grid["base_spec"], "goal": goal, "target": target,
        "runs": runs}, indent=1) + "\n")
    names = sorted({k for r in runs for k in r["hparams"]})
    with open(out / "landscape.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["run_id", "method", *names, "epoch", "step", *METRICS, "model_utility_ratio", "meets_goal",
                    "status"])
        for r in runs:
            for p in r["points"]:
                mu = p.get("model_utility")
                ratio = mu / target["model_utility"] if isinstance(mu, (int, float)) else None
                w.writerow([r["run_id"], r["label"], *(r["hparams"].get(n, "") for n in names), p["epoch"],
                            p.get("step"), *(p.get(m) for m in METRICS), ratio, meets(p, target, goal), r["status"]])
    draw_png(out / "landscape.png", runs, target, goal)


def draw_png(path: Path, runs: list[dict[str, Any]], target: dict[str, float], goal: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["label"] for r in runs))
    cols = min(3, len(labels)) or 1
    rows = math.ceil(len(labels) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), dpi=110, squeeze=False, sharex=True,
                             sharey=True)
    mu_floor = goal["model_utility_ratio"] * target["model_utility"]
    sc = None
    for ax, label in zip(axes.flat, labels):
        pts = [p for r in runs if r["label"] == label for p in r["points"]
               if all(isinstance(p.get(k), (int, float)) for k in ("forget_quality", "model_utility", "gibberish_rate"))]
        x = [p["model_utility"] for p in pts]
        y = [max(p["forget_quality"], FQ_FLOOR) for p in pts]  # below the floor: drawn on it
        c = [p["gibberish_rate"] for p in pts]
        sc = ax.scatter(x, y, c=c, cmap="viridis_r", vmin=0, vmax=0.3, s=14, alpha=0.8, linewidths=0)
        ax.scatter([target["model_utility"]], [max(target.get("forget_quality") or FQ_FLOOR, FQ_FLOOR)], marker="*",
                   s=160, c="red", edgecolors="black", zorder=4, label="target (before unlearning)")
        ax.axhline(goal["forget_quality"], color="black", lw=0.8, ls="--")
        ax.axvline(mu_floor, color="black", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_ylim(FQ_FLOOR / 3, 3)
        ax.set_title(label)
        ax.set_xlabel("model_utility")
        ax.set_ylabel("forget_quality (log)")
        ax.fill_between([mu_floor, max(1.0, mu_floor)], goal["forget_quality"], 2, color="green", alpha=0.07)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), label="gibberish rate (colour saturates at 0.3)")
    axes.flat[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"tofu-mini forget10, every evaluation point of the grid\ngoal (green): {headline(goal)}",
                 fontsize=10)
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------


def stop_workers_on_signal() -> None:
    """SIGTERM / SIGHUP stop the runs in progress too: the pool's spawned workers would otherwise outlive this
    process and go on training (a killed grid left its two runs using both cores). Their runs are not recorded;
    the grid resumes them."""
    import multiprocessing

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        for child in multiprocessing.active_children():
            child.terminate()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=Path, default=REPO / "benchmarks" / "landscape.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "landscape")
    ap.add_argument("--workers", type=int, default=2, help="runs at a time (one thread each)")
    ap.add_argument("--limit", type=int, default=None, help="run only the first N runs of the grid (a look)")
    ap.add_argument("--report-only", action="store_true", help="write the table and PNG from runs.jsonl only")
    ap.add_argument("--markdown", action="store_true", help="also print the per-method table as markdown")
    ap.add_argument("--only", default=None, help="comma-separated grid entries to run and report, by method label "
                    "as printed (e.g. IdkDPO,RMU,DrNPO); default: every entry")
    args = ap.parse_args()
    stop_workers_on_signal()

    from sweeps.operations.shared import prepare_shared
    from unlearning.models.prepare import ensure_zoo_models

    grid = load_grid(args.grid)
    args.out.mkdir(parents=True, exist_ok=True)
    entries, runs = plan_runs(grid, args.out)
    every_run = runs  # the report covers every finished run of the grid, whatever this call ran
    if args.only:
        wanted = {x.strip() for x in args.only.split(",") if x.strip()}
        unknown = wanted - {r["label"] for r in runs}
        if unknown:
            raise SystemExit(f"--only: no grid entry labelled {sorted(unknown)}; the grid has "
                             f"{sorted({r['label'] for r in runs})}")
        runs = [r for r in runs if r["label"] in wanted]
    if args.limit is not None:
        runs = runs[: args.limit]
    spec0 = entries[runs[0]["entry"]][0]
    ensure_zoo_models([n for m in spec0.models for n in (m.name, m.retain_model)])
    shared: dict[int, dict[str, Any]] = {}
    for i, (spec, plan) in enumerate(entries):  # retain reference, target, inputs: once per entry (cached)
        if any(r["entry"] == i for r in runs):
            sw = prepare_shared(spec, plan, log=lambda m: print(m, flush=True))
            shared[i] = {"reference_dir": sw.reference_dir, "inputs_dir": sw.inputs_dir, "target": sw.target_metrics}
    target = {k: v for k, v in shared[runs[0]["entry"]]["target"].items() if isinstance(v, (int, float))}
    kept = args.out / "landscape.json"
    if args.report_only and kept.is_file():  # the data's own zoo: another machine's zoo is another target
        target = json.loads(kept.read_text(encoding="utf-8")).get("target", target)
    objective_names = [o.name for o in spec0.objectives]
    done = read_runs(args.out)
    todo = [r for r in runs if r["run_id"] not in done]
    print(f"{len(runs)} runs in the grid, {len(runs) - len(todo)} already done, {len(todo)} to run "
          f"({args.workers} at a time)", flush=True)
    if todo and not args.report_only:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool, \
                open(args.out / RUNS_FILE, "a", encoding="utf-8") as fh:
            pending = {pool.submit(_run_one, r, entries[r["entry"]][1].base, shared[r["entry"]],
                                   str(args.out / "landscape"), objective_names) for r in todo}
            finished = 0
            while pending:
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in ready:
                    rec = fut.result()
                    fh.write(json.dumps(rec) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                    done[rec["run_id"]] = rec
                    finished += 1
                    left = (time.perf_counter() - t0) / finished * (len(todo) - finished)
                    best = max((p.get("forget_quality") or 0 for p in rec["points"]), default=0)
                    print(f"[{finished}/{len(todo)}] {rec['label']} {rec['hparams']}: {rec['status']}, "
                          f"{len(rec['points'])} points, best forget_quality {best:.2g}, {rec['wall_s']:.0f}s "
                          f"(about {left / 60:.0f} min left)", flush=True)
    ordered = [done[r["run_id"]] for r in every_run if r["run_id"] in done]
    write_outputs(args.out, grid, target, ordered)
    print(f"wrote {args.out / 'landscape.csv'}, {args.out / 'landscape.json'}, {args.out / 'landscape.png'}")
    if args.markdown:
        grids: dict[str, list[dict[str, list]]] = {}
        for i in dict.fromkeys(r["entry"] for r in every_run):  # a method with a second grid lists both
            grids.setdefault(entries[i][1].label, []).append(grid["grids"][i]["grid"])
        print("\n".join(markdown_table(ordered, target, grid["goal"], grids)))
    for line in summarise(ordered, target, grid["goal"]):
        print(line)


if __name__ == "__main__":
    main()
