"""Worker of the two-process DeepSpeed test (spawned by torch.multiprocessing; must be importable).

Each rank trains the same tiny NPO run with the torch engine (all-reduced gradients), DeepSpeed ZeRO-2
and DeepSpeed ZeRO-3 in one gloo process group, and saves its loss histories and final weights.
"""

from __future__ import annotations

import logging
import os


def two_rank_worker(rank: int, world: int, port: int, out_dir: str, kwargs: dict) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch

    torch.set_num_threads(1)
    logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)
    from train_fixtures import TEMPLATE, loop_cfg, make_model, make_tokenizer, qa_rows
    from unlearning.methods import build_method
    from unlearning.train.data import build_forget_retain
    from unlearning.train.loop import unlearn

    tok = make_tokenizer()
    results = {}
    for engine, stage in (("torch", 0), ("deepspeed", 2), ("deepspeed", 3)):
        model = make_model(len(tok), seed=kwargs["model_seed"])
        method = build_method("NPO")
        data = build_forget_retain(tok, TEMPLATE, *qa_rows(), max_length=128, seed=0)
        data.attach_ref_logps(model, keys=method.needs_ref_logps)
        draws: list[int] = []
        original = data.draw_retain

        def recording_draw() -> int:
            draws.append(original())
            return draws[-1]

        data.draw_retain = recording_draw
        history = unlearn(model, method, data, loop_cfg(engine=engine, zero_stage=stage, **kwargs["cfg"]))
        results[f"{engine}{stage}"] = {"losses": history.losses(), "lrs": [s["lr"] for s in history.steps],
                                       "params": {n: p.detach().clone() for n, p in model.named_parameters()},
                                       "draws": draws}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
