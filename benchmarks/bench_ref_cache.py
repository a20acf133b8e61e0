"""Benchmark: NPO step time with cached reference log-probs vs a live frozen reference model.

    python benchmarks/bench_ref_cache.py
    .venv/bin/python benchmarks/bench_ref_cache.py --hidden 256 --layers 4 --repeats 5 --threads 2

Both runs are `unlearn(..., engine="torch")` on the same tiny Llama (random init, float32, CPU), data and
schedule; the only difference is where log pi_ref(y|x) comes from: cached once per forget example before
training (`data.attach_ref_logps`, what `run_train` does) or a no-grad forward of a frozen copy of the
model at every step (the reference code's way). The script checks that the loss trajectories agree
(1e-5 relative) and prints the mean step time of each and the ratio cached/live (target <= 0.75), for NPO
with its default NLL retain term (alpha=1) and for the forget term alone (alpha=0), plus the one-off
cost of building the cache. The live reference forward is one forward pass out of roughly
3 (forget fwd+bwd) + 3 (retain fwd+bwd) + 1, so with a retain term the ideal ratio is about 6/7 = 0.86;
forget-only it is about 3/4. Runs alternate `--repeats` times, medians are used; this machine may be
shared, so read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from unlearning.data.templates import get_template  # noqa: E402
from unlearning.data.tofu_mini import TofuMiniConfig, generate  # noqa: E402
from unlearning.methods import build_method  # noqa: E402
from unlearning.methods.reference import frozen_copy  # noqa: E402
from unlearning.models.tokenizer import train_bpe_tokenizer  # noqa: E402
from unlearning.train.config import LoopConfig  # noqa: E402
from unlearning.train.data import build_forget_retain  # noqa: E402
from unlearning.train.loop import unlearn  # noqa: E402

logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--authors", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    return ap


def main() -> None:
    ratios = measure(parser().parse_args())
    print(f"cached-reference step {ratios[1.0]:.2f}x live with the retain term, {ratios[0.0]:.2f}x forget term only "
          "(target <= 0.75)")


def measure(args: argparse.Namespace) -> dict[float, float]:
    """Print the comparison; returns {alpha: cached/live step-time ratio} for alpha 1 and 0."""
    torch.set_num_threads(args.threads)

    rows = generate(TofuMiniConfig(n_authors=args.authors, seed=0))
    forget, retain = rows["forget10"], rows["retain90"]
    tok = train_bpe_tokenizer([r[k] for r in rows["full"] for k in ("question", "answer")], vocab_size=args.vocab)
    template = get_template("plain")
    cfg = LoopConfig(engine="torch", lr=1e-4, epochs=args.epochs, batch_size=args.batch, grad_accum=1,
                     warmup_epochs=1.0, weight_decay=0.01, max_grad_norm=1.0, seed=0)

    def model():
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
            num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=256))

    def run(cached: bool, alpha: float) -> tuple[list[float], float, float]:
        m = model()
        data = build_forget_retain(tok, template, forget, retain, max_length=128, seed=0)
        t0 = time.perf_counter()
        ref = None
        if cached:
            data.attach_ref_logps(m, keys=("forget",))
        else:
            ref = frozen_copy(m)
        prep = time.perf_counter() - t0
        hist = unlearn(m, build_method("NPO", alpha=alpha), data, cfg, ref_model=ref)
        times = [s["time_s"] for s in hist.steps]
        return hist.losses(), (times[-1] - times[0]) / (len(times) - 1), prep

    print(f"model h{args.hidden} L{args.layers}, NPO, batch {args.batch}, {len(forget)} forget rows, "
          f"{args.threads} thread(s), {args.repeats} repeats")
    probe = model()
    probe_data = build_forget_retain(tok, template, forget, retain, max_length=128, seed=0)
    probe_data.attach_ref_logps(probe, keys=("forget",))
    ref_bytes = sum(p.numel() * p.element_size() for p in probe.parameters())
    cache_bytes = sum(r.numel() * r.element_size() for r in probe_data.ref_logps["forget"])
    print(f"memory: a live reference holds {ref_bytes / 2**20:.1f} MiB of weights; the cache holds "
          f"{cache_bytes / 2**10:.1f} KiB ({sum(r.numel() for r in probe_data.ref_logps['forget'])} float32 values)")
    ratios: dict[float, float] = {}
    for alpha in (1.0, 0.0):
        run(True, alpha), run(False, alpha)  # warm-up
        cached_t, live_t, preps = [], [], []
        for _ in range(args.repeats):
            c_losses, c_step, c_prep = run(True, alpha)
            l_losses, l_step, _ = run(False, alpha)
            for a, b in zip(c_losses, l_losses):
                assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), f"cached and live losses differ: {a} vs {b}"
            cached_t.append(c_step)
            live_t.append(l_step)
            preps.append(c_prep)
        c, lv = statistics.median(cached_t), statistics.median(live_t)
        label = "NPO (alpha=1, NLL retain)" if alpha else "NPO forget term only (alpha=0)"
        print(f"{label}: losses equal (1e-5) over {len(c_losses)} steps")
        print(f"  live reference : {1000 * lv:7.1f} ms/step")
        print(f"  cached logps   : {1000 * c:7.1f} ms/step  (+ {1000 * statistics.median(preps):.0f} ms once "
              f"to build the cache)")
        print(f"  ratio cached/live: {c / lv:.3f}x  (target <= 0.75)")
        ratios[alpha] = c / lv
    return ratios


if __name__ == "__main__":
    main()
