"""Benchmark: what a sweep trial costs beyond its own work, and what the cached reference saves.

    python benchmarks/bench_overhead.py                 # 4 trials of the default sweep + the reference-cache runs
    python benchmarks/bench_overhead.py --trials 2 --ref-repeats 1      # quicker, noisier

1. Per-trial overhead. The default sweep (`presets/tofu-mini.yaml`: the tiny zoo, NPO + BalDRO-DV, DeepSpeed
   loop, evaluation every epoch) runs `--trials` trials through the real service (Ray Tune, Optuna random
   sampler, MLflow on SQLite), one at a time so that trials never share the 2 cores, in a scratch storage
   folder. Each trial's wall time is what the driver sees from its start to its end (`points.jsonl`,
   `wall_s`). Then the same train configs (each trial's own `config.yaml`, the merged config an export
   gives) run bare in this process: `run_train` with the same evaluation points and the same shared inputs
   (tokenised data, reference log-probs), no Ray, no tracking. The overhead is
   (sum of trial wall times - sum of bare times) / sum of bare times: Ray scheduling, the trial process and
   its imports, reporting, recording. The sweep's once-per-search work (Ray start, retain reference, shared
   inputs, the target's evaluation) is not per trial and is printed separately. The sweep's first trial (the
   first to start) is reported apart from the median trial: it is the one that would pay its worker's cold
   imports (`trainables/warm_imports.py` has Ray's workers import them as they start; UNLEARN_SWEEP_COLD_WORKERS=1
   turns that off, to measure what it saves). Before the bare runs, one bare run of the first trial's config
   warms this process (its time is printed, not counted), so that no bare run pays first-run costs either.
   The machine's load average is printed at the start and at the end: on a shared machine the ratios are noisy.
2. Cached-reference step: `benchmarks/bench_ref_cache.py` (NPO step time with cached reference log-probs
   against a live frozen reference model, same losses), with the retain term (the default NPO, alpha = 1)
   and for the forget term alone. A live reference costs one forward pass out of about 7 with the retain
   term, so 6/7 = 0.86x is that ratio's floor; forget-only the floor is about 3/4.

The last line is the headline:
`first trial overhead <f>%, median trial <m>% of the bare loop (goal <= 10% each; outside their own work: first
<a>s, median <b>s); cached-reference step <y>x live (goal <= 0.75x)` with y the default NPO's (retain term
included); the forget-only ratio and the overhead of all trials together are printed above it. The seconds
outside a trial's own work (the driver's wall time - the time the trial measured inside itself) are the part of
the overhead that does not depend on how busy the machine is when the bare runs run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def sweep_spec(storage: Path, trials: int, seed: int) -> Path:
    """The default sweep's spec, one variant, `trials` trials one at a time, random sampler, in `storage`."""
    import yaml

    from unlearning.yaml_io import read_yaml

    raw = read_yaml(REPO / "presets" / "tofu-mini.yaml")
    raw["name"] = "bench-overhead"
    raw["method"]["baldro"] = ["dv"]
    raw["budget"] = {"num_trials": trials, "max_concurrent": 1, "max_failures": 0}
    raw["search"] = {"sampler": "random"}
    raw["storage"] = str(storage)
    raw["tracking"] = {"experiment": "unlearn/bench-overhead"}
    raw["seed"] = seed
    path = storage / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def bare_seconds(config_file: Path, inputs_dir: Path, out_dir: Path) -> float:
    """Run one trial's train config in this process, as `unlearn-sweep train` would (same evaluation points,
    the epoch-0 evaluation skipped as the trial skips it), with the sweep's shared inputs."""
    import torch

    from unlearning.yaml_io import read_yaml
    from unlearning.train.config import parse_train_config
    from unlearning.train.run import default_eval_hook_factory, run_train

    raw = read_yaml(config_file)
    raw["output_dir"] = str(out_dir)
    config = parse_train_config(raw, where=str(config_file))

    def factory(train_config, bundle):
        evaluate = default_eval_hook_factory()(train_config, bundle)
        return lambda model, epoch: None if epoch == 0 else evaluate(model, epoch)

    torch.set_num_threads(1)  # the trial's threads (resources.cpus = 1)
    t0 = time.perf_counter()
    run_train(config, eval_hook_factory=factory, resume=False, inputs_cache=inputs_dir)
    return time.perf_counter() - t0


def load_line(when: str) -> str:
    one, five, _ = os.getloadavg()
    return f"machine ({when}): {os.cpu_count()} cores, load average {one:.1f} (1 min), {five:.1f} (5 min)"


def per_trial_overhead(args: argparse.Namespace) -> tuple[float, float, float, float, float]:
    """(all trials' overhead, the first trial's, the median trial's), each (wall - bare) / bare, then the first
    and the median trial's seconds outside their own work (driver wall - the trial's `trial_seconds`)."""
    from rich.console import Console

    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec
    from unlearning.yaml_io import read_yaml

    storage = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        spec = load_spec(sweep_spec(storage, args.trials, args.seed))
        t0 = time.perf_counter()
        sweep_dir = run_sweep(spec, console=Console(quiet=True))
        sweep_wall = time.perf_counter() - t0
        trials = [t for t in read_results(sweep_dir).trials.values() if t.status == "finished" and t.wall_s]
        if not trials:
            raise SystemExit("no trial finished: see the sweep's log above")
        trials.sort(key=lambda t: t.time - t.wall_s)   # in the order they started; the first paid any cold start
        first = trials[0].trial_id
        warm = bare_seconds(sweep_dir / "trials" / first / "config.yaml", sweep_dir / "shared" / "inputs",
                            storage / "bare" / "warm-up")
        print(f"bare warm-up run (not counted): {warm:.1f}s")
        rows = []
        for t in trials:
            bare = bare_seconds(sweep_dir / "trials" / t.trial_id / "config.yaml", sweep_dir / "shared" / "inputs",
                                storage / "bare" / t.trial_id)
            config = read_yaml(sweep_dir / "trials" / t.trial_id / "config.yaml")
            rows.append((t.trial_id, config.get("train", {}).get("epochs", "?"), t.wall_s, t.work_s, bare))
        print(f"per-trial overhead: {len(rows)} trials of the default sweep, one at a time")
        print(f"  {'trial':<16} {'epochs':>6} {'trial wall s':>12} {'inside s':>9} {'bare s':>7} {'overhead':>9}")
        for tid, epochs, wall, work, bare in rows:
            print(f"  {tid:<16} {epochs:>6} {wall:12.1f} {work or 0:9.1f} {bare:7.1f} "
                  f"{100 * (wall - bare) / bare:8.1f}%{'  (first)' if tid == first else ''}")
        first_share = (rows[0][2] - rows[0][4]) / rows[0][4]
        shares = sorted((r[2] - r[4]) / r[4] for r in rows)
        median = shares[len(shares) // 2] if len(shares) % 2 else sum(shares[len(shares) // 2 - 1:][:2]) / 2
        outside = sorted((r[2] - (r[3] or r[2])) for r in rows)   # driver wall - the trial's own work
        first_out, median_out = rows[0][2] - (rows[0][3] or rows[0][2]), outside[len(outside) // 2]
        print(f"  first trial: {100 * first_share:.1f}%, median per trial: {100 * median:.1f}%; outside the trial's "
              f"own work (Ray, worker start and imports, reporting): first {first_out:.1f}s, median {median_out:.1f}s")
        wall_sum, bare_sum = sum(r[2] for r in rows), sum(r[4] for r in rows)
        print(f"  once per search (Ray start, retain reference, shared inputs, target evaluation, shutdown): "
              f"{sweep_wall - wall_sum:.1f}s of the sweep's {sweep_wall:.1f}s")
        return (wall_sum - bare_sum) / bare_sum, first_share, median, first_out, median_out
    finally:
        if not args.keep:
            shutil.rmtree(storage, ignore_errors=True)
        else:
            print(f"kept {storage}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4, help="trials of the default sweep (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref-repeats", type=int, default=3, help="alternating repeats of the reference-cache runs")
    ap.add_argument("--keep", action="store_true", help="keep the scratch sweep folder")
    args = ap.parse_args()

    import bench_ref_cache

    print(load_line("start"))
    overhead, first, median, first_out, median_out = per_trial_overhead(args)
    print(f"per-trial overhead of all trials together {100 * overhead:.1f}% of the bare run")
    ratios = bench_ref_cache.measure(bench_ref_cache.parser().parse_args(["--repeats", str(args.ref_repeats)]))
    print(f"cached-reference step, forget term only: {ratios[0.0]:.2f}x live (floor ~0.75x); with the retain "
          f"term: {ratios[1.0]:.2f}x (floor ~0.86x)")
    print(load_line("end"))
    print(f"first trial overhead {100 * first:.1f}%, median trial {100 * median:.1f}% of the bare loop (goal <= 10% "
          f"each; outside their own work: first {first_out:.1f}s, median {median_out:.1f}s); cached-reference step "
          f"{ratios[1.0]:.2f}x live (goal <= 0.75x)")


if __name__ == "__main__":
    main()
