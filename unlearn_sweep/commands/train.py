"""`unlearn-sweep train CONFIG.yaml`: run one unlearning job (the "final run" an exported config replays).

    unlearn-sweep train configs/train/npo_tofu_mini.yaml
    unlearn-sweep train configs/train/npo_tofu_mini.yaml --engine torch --out runs/npo_debug
    torchrun --nproc_per_node=2 -m unlearn_sweep.cli train configs/train/npo_tofu_mini.yaml   # 2 ranks (gloo on CPU)

Re-running with the same --out resumes from the newest checkpoint (add --no-resume to start over).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

EXAMPLES = """Examples:

  unlearn-sweep train configs/train/npo_tofu_mini.yaml

  unlearn-sweep train configs/train/npo_tofu_mini.yaml --engine torch --out runs/npo_debug

  torchrun --nproc_per_node=2 -m unlearn_sweep.cli train configs/train/npo_tofu_mini.yaml
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def train(
        config: Path = typer.Argument(..., help="Train YAML (see configs/train/)."),
        engine: Optional[str] = typer.Option(None, help="Override train.engine: deepspeed or torch."),
        out: Optional[Path] = typer.Option(None, help="Override output_dir (model, history, checkpoints)."),
        resume: bool = typer.Option(True, help="Resume from the newest checkpoint in <out>/checkpoints."),
    ) -> None:
        """Unlearn one model with one method from a validated YAML; saves the model and its history."""
        from sweeps.operations.interrupts import Interrupted
        from unlearning.train.config import load_train_config
        from unlearning.train.run import run_train

        overrides: dict = {}
        if engine is not None:  # plain torch is ZeRO stage 0
            overrides["train"] = {"engine": engine, **({"zero_stage": 0} if engine == "torch" else {})}
        if out is not None:
            overrides["output_dir"] = str(out)
        cfg = load_train_config(config, overrides=overrides)
        if int(os.environ.get("RANK", "0")) == 0:  # zoo models nobody prepared yet: train them first, once
            from unlearning.benchmarks.hook import retain_model_for
            from unlearning.models.prepare import ensure_zoo_models

            retain = retain_model_for(cfg)
            ensure_zoo_models([cfg.model.name, retain if cfg.eval.enabled else None], log=typer.echo)
        try:
            result = run_train(cfg, resume=resume, log=lambda m: typer.echo(m))
        except (Interrupted, KeyboardInterrupt) as exc:
            sig = exc.signal if isinstance(exc, Interrupted) else "SIGINT"
            raise Interrupted(sig, "rerun the same command to resume from the last checkpoint in "
                                   f"{Path(cfg.output_dir) / 'checkpoints'}") from None
        if int(os.environ.get("RANK", "0")) != 0:
            return  # under torchrun only rank 0 reports
        hist = result["history"]
        final = result["final"]
        if hist["steps"]:
            first = hist["steps"][0]
            typer.echo(f"{len(hist['steps'])} optimizer steps: loss {first['loss']:.4f} -> {final['loss']:.4f} "
                       f"(forget {final['forget_loss']:.4f}, retain {final['retain_loss']:.4f})")
        for ev in result["evals"]:
            typer.echo(f"eval epoch {ev['epoch']}: " + ", ".join(f"{k}={v}" for k, v in ev.items() if k != "epoch"))
        typer.echo(f"model: {result['model_dir']}")
