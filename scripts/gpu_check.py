"""The GPU check behind scripts/gpu_check.sh: tiny-zoo runs on CUDA (ZeRO-2 and ZeRO-3 in bf16, a 2-trial sweep
with `resources: {gpus: 1}`) against the same runs on the CPU, metrics compared within a relative tolerance,
throughput printed. See docs/gpu-check.md.

    python scripts/gpu_check.py              # on a CUDA machine: GPU runs + CPU references, compared
    python scripts/gpu_check.py --cpu-only   # the CPU reference runs only (the script's plumbing, anywhere)

Exit status: 0 when every compared metric is within tolerance (or nothing to compare), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / "configs" / "train" / "npo_tofu_mini.yaml"
MODEL = os.environ.get("GPU_CHECK_MODEL", "tofu-mini-tiny/target")
RTOL = float(os.environ.get("GPU_CHECK_RTOL", "0.1"))  # bf16 on the GPU vs float32 on the CPU, a few steps apart
EPOCHS = int(os.environ.get("GPU_CHECK_EPOCHS", "2"))
LIMIT = int(os.environ.get("GPU_CHECK_LIMIT", "32"))
METRICS = ["forget_quality", "model_utility"]
EVAL = {"max_new_tokens": 16, "metrics": [*METRICS, "forget_Q_A_gibberish"]}


def train_config(name: str, out: Path, *, zero_stage: int, dtype: str) -> dict[str, Any]:
    """The repo's NPO train config on the check's model: DeepSpeed ZeRO `zero_stage` in `dtype`, evaluated at the
    end only (so the step times are training alone)."""
    cfg = yaml.safe_load(BASE_CONFIG.read_text())
    cfg["model"].update(name=MODEL, dtype=dtype)
    cfg["data"]["limit"] = LIMIT
    cfg["train"].update(engine="deepspeed", zero_stage=zero_stage, epochs=EPOCHS, batch_size=8, grad_accum=1,
                        warmup_epochs=0.0)
    cfg["eval"] = {"enabled": True, "every": None, "settings": EVAL}
    cfg["output_dir"] = str(out / name)
    return cfg


def sweep_spec(name: str, out: Path, gpus: int) -> dict[str, Any]:
    """A 2-trial sweep (seeded: the same 2 configurations on the GPU and the CPU), one search, float32."""
    return {"name": name, "models": [MODEL], "method": {"name": "NPO", "baldro": ["none"]},
            "data": {"source": "tofu-mini", "forget_split": "forget10", "limit": LIMIT},
            "fixed": {"beta": 0.1, "batch_size": 8, "grad_accum": 1, "epochs": EPOCHS, "warmup_epochs": 0.0,
                      "engine": "torch", "dtype": "float32"},
            "search_space": {"lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True}},
            "eval": {"settings": EVAL},
            "budget": {"num_trials": 2, "max_concurrent": 1, "max_failures": 0},
            "resources": {"cpus": 1, "gpus": gpus, "workers": 1},
            "storage": str(out / "sweeps"), "seed": 0}


def _env(device: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if device == "cpu":  # the reference: no GPU visible, DeepSpeed on its CPU accelerator
        env.update(CUDA_VISIBLE_DEVICES="", DS_ACCELERATOR="cpu")
    return env


def _cli(args: list[str], device: str, log: Path) -> float:
    """Run `unlearn-sweep ARGS` (its output into `log`); returns the wall seconds, exits on failure."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.call([sys.executable, "-m", "unlearn_sweep.cli", *args], cwd=REPO, env=_env(device),
                             stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if rc != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        sys.exit(f"gpu_check: `unlearn-sweep {' '.join(args)}` ({device}) failed with status {rc}; "
                 f"last lines of {log}:\n{tail}")
    return wall


def tokens_per_epoch(cfg: dict[str, Any]) -> int:
    """Tokens (non-padding, forget + retain, every micro-batch) one epoch of `cfg` trains on (CPU, once)."""
    import torch

    from unlearning.models.loading import load_bundle
    from unlearning.train.config import parse_train_config
    from unlearning.train.data import data_source
    from unlearning.train.inputs import run_inputs
    from unlearning.train.run import build_run_method

    config = parse_train_config({**cfg, "model": {**cfg["model"], "dtype": "float32"}}, where="gpu_check")
    bundle = load_bundle(config.model.name, dtype="float32")
    method = build_run_method(config, bundle.tokenizer)
    data = run_inputs(config, bundle, method, data_source(config.data, config.model.name))
    data.start(config.train.seed, 0)

    def count(x: Any) -> int:
        if isinstance(x, dict):
            return sum(int(v.sum()) if k == "attention_mask" and isinstance(v, torch.Tensor) else count(v)
                       for k, v in x.items())
        return 0

    return sum(count(data.collate(ix)) for ix in data.micro_batches(0, 0, 1, config.train.batch_size))


def run_train(name: str, cfg: dict[str, Any], device: str, out: Path, tokens: int) -> dict[str, Any]:
    """One `unlearn-sweep train` run; returns its metrics and throughput."""
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    wall = _cli(["train", str(path), "--no-resume"], device, out / f"{name}.log")
    res_dir = Path(cfg["output_dir"])
    hist = json.loads((res_dir / "history.json").read_text())
    result = json.loads((res_dir / "result.json").read_text())
    steps = hist["steps"]
    # steps/s over the steps after the first (its time holds the engine's start-up and the first CUDA kernels)
    span = steps[-1]["time_s"] - steps[0]["time_s"] if len(steps) > 1 else float("nan")
    sps = (len(steps) - 1) / span if span > 0 else float("nan")
    last_eval = next((e for e in reversed(result.get("evals", [])) if e.get("epoch")), {})
    metrics = {"first_loss": steps[0]["loss"], "final_loss": steps[-1]["loss"]}
    metrics.update(_flat(last_eval))
    return {"name": name, "device": device, "wall_s": wall, "steps": len(steps), "steps_per_s": sps,
            "tokens_per_s": sps * tokens / max(1, hist["steps_per_epoch"]), "metrics": metrics}


def _flat(ev: dict[str, Any]) -> dict[str, float]:
    from unlearning.evaluation.config import flat_metrics

    flat = flat_metrics(ev) if any(isinstance(v, dict) for v in ev.values()) else ev
    return {k: float(flat[k]) for k in METRICS if isinstance(flat.get(k), (int, float))}


def run_sweep(name: str, device: str, out: Path) -> dict[str, Any]:
    """The 2-trial sweep; returns each trial's last point (in trial start order) and throughput."""
    spec = sweep_spec(name, out, 1 if device == "cuda" else 0)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    sweep_dir = out / "sweeps" / name
    if sweep_dir.exists():
        import shutil

        shutil.rmtree(sweep_dir)
    wall = _cli(["run", str(path), "--tracking-optional"], device, out / f"{name}.log")
    from sweeps.recording.results import read_results

    res = read_results(sweep_dir)
    order = list(dict.fromkeys(p.trial_id for p in res.points))  # first point first: the start order
    last = {}
    for p in res.points:
        last[p.trial_id] = p
    work = [t.work_s for t in res.trials.values() if t.work_s]
    return {"name": name, "device": device, "wall_s": wall, "trials": len(res.trials),
            "statuses": sorted(t.status for t in res.trials.values()),
            "work_s": sum(work) / len(work) if work else float("nan"),
            "points": [{"hparams": last[t].hparams, **{k: last[t].metrics.get(k) for k in METRICS}} for t in order]}


def close(a: float | None, b: float | None, rtol: float) -> tuple[bool, float]:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False, float("nan")
    rel = abs(a - b) / max(abs(a), abs(b), 1e-12)
    return rel <= rtol, rel


def compare(label: str, gpu: dict[str, float], cpu: dict[str, float], rtol: float) -> bool:
    """Print each metric of a GPU run beside its CPU reference; forget_quality (a p-value spanning orders of
    magnitude) is compared on log10."""
    ok = True
    for key in cpu:
        g, c = gpu.get(key), cpu.get(key)
        if key == "forget_quality" and g and c and g > 0 and c > 0:
            g, c, key = math.log10(g), math.log10(c), "log10(forget_quality)"
        good, rel = close(g, c, rtol)
        ok &= good
        print(f"  {label:<22} {key:<24} gpu {g:>11.5g}  cpu {c:>11.5g}  rel diff {rel:8.2%}  "
              f"{'ok' if good else 'FAIL'} (rtol {rtol:.0%})")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-only", action="store_true", help="run the CPU reference runs only (no GPU needed)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("GPU_CHECK_DIR", REPO / "runs" / "gpu_check")))
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    devices = ["cpu"] if args.cpu_only else ["cuda", "cpu"]
    print(f"gpu_check: model {MODEL}, {LIMIT} forget rows, {EPOCHS} epochs, devices {'+'.join(devices)}, "
          f"relative tolerance {RTOL:.0%}; logs and runs in {out}", flush=True)

    cpu_ref = {"zero2": train_config("zero2-cpu", out, zero_stage=2, dtype="float32"),
               "zero3": train_config("zero3-cpu", out, zero_stage=3, dtype="float32")}
    tokens = tokens_per_epoch(cpu_ref["zero2"])
    print(f"  {tokens} tokens per epoch (forget + retain, without padding)", flush=True)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for stage in ("zero2", "zero3"):
        for device in devices:
            dtype = "bfloat16" if device == "cuda" else "float32"
            cfg = train_config(f"{stage}-{device}", out, zero_stage=int(stage[-1]), dtype=dtype)
            r = run_train(f"{stage}-{device}", cfg, device, out, tokens)
            runs[(stage, device)] = r
            print(f"  train {stage} {device} ({dtype}): {r['steps']} steps, {r['steps_per_s']:.2f} steps/s, "
                  f"{r['tokens_per_s']:.0f} tokens/s, {r['wall_s']:.1f}s wall; "
                  + ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items()), flush=True)
    sweeps = {}
    for device in devices:
        s = run_sweep(f"gpu-check-sweep-{device}", device, out)
        sweeps[device] = s
        print(f"  sweep {device} (gpus: {1 if device == 'cuda' else 0}): {s['trials']} trials "
              f"({', '.join(s['statuses'])}), {s['wall_s']:.1f}s wall, {s['work_s']:.1f}s of work per trial; "
              + "; ".join(", ".join(f"{k}={v:.4g}" for k, v in p.items() if k in METRICS) for p in s["points"]),
              flush=True)

    if args.cpu_only:
        print("gpu_check: CPU reference runs done (--cpu-only: no GPU runs, nothing compared)")
        return 0
    ok = True
    print(f"comparison, GPU vs CPU (relative tolerance {RTOL:.0%}):")
    for stage in ("zero2", "zero3"):
        ok &= compare(f"train {stage} bf16", runs[(stage, "cuda")]["metrics"], runs[(stage, "cpu")]["metrics"], RTOL)
    g, c = sweeps["cuda"]["points"], sweeps["cpu"]["points"]
    if len(g) != len(c) or [p["hparams"] for p in g] != [p["hparams"] for p in c]:
        print("  sweep: the GPU and CPU sweeps sampled different configurations: FAIL")
        ok = False
    else:
        for i, (gp, cp) in enumerate(zip(g, c)):
            ok &= compare(f"sweep trial {i + 1}", {k: gp[k] for k in METRICS}, {k: cp[k] for k in METRICS}, RTOL)
    print(f"gpu_check: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
