"""Benchmark: `unlearn` step throughput vs a bare PyTorch loop doing the same math, in one process.

    python benchmarks/bench_loop.py
    .venv/bin/python benchmarks/bench_loop.py --hidden 256 --layers 4 --repeats 5 --threads 2
    .venv/bin/python benchmarks/bench_loop.py --deepspeed        # also DeepSpeed ZeRO-0/2 (informational)

Both sides train the same tiny Llama (random init, float32, CPU) with NPO (cached reference log-probs,
NLL retain) on tofu-mini forget/retain rows: the same ForgetRetain data, order and collation, the same
AdamW + HF linear schedule + clipping, gradient accumulation 2. The bare loop is the textbook one
(forward, loss / accum, backward, clip, step, zero_grad); ours is `unlearn(..., engine="torch")` with its
engine abstraction, history, NaN check and loss bookkeeping. The script checks that the two loss
trajectories agree (1e-5 relative), then prints steps/s of each and the ratio ours/bare (target >= 0.9).
Throughput counts the steps after the first (warm-up). Runs alternate bare/ours `--repeats` times and the
median of each is used; this machine may be shared, so read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from unlearning.data.templates import get_template  # noqa: E402
from unlearning.data.tofu_mini import TofuMiniConfig, generate  # noqa: E402
from unlearning.methods import build_method  # noqa: E402
from unlearning.models.tokenizer import train_bpe_tokenizer  # noqa: E402
from unlearning.train.config import LoopConfig  # noqa: E402
from unlearning.train.data import build_forget_retain  # noqa: E402
from unlearning.train.engine import lr_lambda, param_groups, warmup_steps_for  # noqa: E402
from unlearning.train.loop import unlearn  # noqa: E402

logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)


def setup(args):
    rows = generate(TofuMiniConfig(n_authors=args.authors, seed=0))
    forget, retain = rows["forget10"], rows["retain90"]
    texts = [r[k] for r in rows["full"] for k in ("question", "answer")]
    tok = train_bpe_tokenizer(texts, vocab_size=args.vocab)
    template = get_template("plain")

    def model_factory():
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
            num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=256))

    def data_factory(model):
        data = build_forget_retain(tok, template, forget, retain, max_length=128, seed=0)
        data.attach_ref_logps(model, keys=("forget",))
        return data

    return model_factory, data_factory


def loop_config(args, engine: str = "torch", stage: int = 0) -> LoopConfig:
    return LoopConfig(engine=engine, zero_stage=stage, lr=1e-4, epochs=args.epochs, batch_size=args.batch,
                      grad_accum=2, warmup_epochs=1.0, weight_decay=0.01, max_grad_norm=1.0, seed=0)


def bare_loop(model, method, data, cfg: LoopConfig) -> tuple[list[float], list[float]]:
    """The same math, written plainly: returns (per-step mean loss, per-step end times)."""
    n = len(data)
    steps_per_epoch = math.ceil(math.ceil(n / cfg.batch_size) / cfg.grad_accum)
    total = cfg.epochs * steps_per_epoch
    warmup = warmup_steps_for(cfg.warmup_epochs, n, cfg.batch_size, cfg.grad_accum, 1)
    torch.manual_seed(cfg.seed)
    data.start(cfg.seed, 0)
    opt = torch.optim.AdamW(param_groups(model, list(model.named_parameters()), cfg.weight_decay), lr=cfg.lr,
                            betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup, total, cfg.lr_scheduler))
    model.train()
    losses, times = [], []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        batches = data.micro_batches(epoch, 0, 1, cfg.batch_size)
        for g in range(0, len(batches), cfg.grad_accum):
            group = batches[g:g + cfg.grad_accum]
            total_loss = 0.0
            for indices in group:
                out = method.loss(model, data.collate(indices))
                (out.loss / len(group)).backward()
                total_loss += out.loss.item() / len(group)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(total_loss)
            times.append(time.perf_counter() - t0)
    return losses, times


def steps_per_s(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--authors", type=int, default=40, help="tofu-mini authors (forget10 = 20 rows per 10)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--deepspeed", action="store_true", help="also time DeepSpeed ZeRO-0 and ZeRO-2")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_factory, data_factory = setup(args)

    def run_ours(engine="torch", stage=0):
        model = model_factory()
        data = data_factory(model)
        hist = unlearn(model, build_method("NPO"), data, loop_config(args, engine, stage))
        return hist.losses(), [s["time_s"] for s in hist.steps]

    def run_bare():
        model = model_factory()
        data = data_factory(model)
        return bare_loop(model, build_method("NPO"), data, loop_config(args))

    run_ours(), run_bare()  # warm-up: allocator, kernels, imports
    bare_rates, ours_rates = [], []
    for _ in range(args.repeats):
        bare_losses, bare_times = run_bare()
        our_losses, our_times = run_ours()
        for a, b in zip(our_losses, bare_losses):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), f"loss trajectories differ: {a} vs {b}"
        bare_rates.append(steps_per_s(bare_times))
        ours_rates.append(steps_per_s(our_times))
    bare, ours = statistics.median(bare_rates), statistics.median(ours_rates)
    n_steps = len(bare_times)
    print(f"model h{args.hidden} L{args.layers}, NPO, batch {args.batch} x accum 2, {n_steps} steps/run, "
          f"{args.threads} thread(s), {args.repeats} repeats; losses equal (1e-5)")
    print(f"bare PyTorch loop : {bare:8.2f} steps/s  (runs: {', '.join(f'{r:.2f}' for r in bare_rates)})")
    print(f"unlearn (torch)   : {ours:8.2f} steps/s  (runs: {', '.join(f'{r:.2f}' for r in ours_rates)})")
    print(f"ratio unlearn/bare: {ours / bare:.3f}x  (target >= 0.9)")
    if args.deepspeed:
        for stage in (0, 2):
            run_ours("deepspeed", stage)  # first init (JIT of shm_comm on a fresh machine) not timed
            rates = []
            for _ in range(args.repeats):
                losses, times = run_ours("deepspeed", stage)
                for a, b in zip(losses, bare_losses):
                    assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"ZeRO-{stage} loss differs: {a} vs {b}"
                rates.append(steps_per_s(times))
            ds = statistics.median(rates)
            print(f"unlearn (DeepSpeed ZeRO-{stage}): {ds:8.2f} steps/s, ratio to bare {ds / bare:.3f}x")


if __name__ == "__main__":
    main()
