"""One whole unlearning run from a validated TrainConfig: load, prepare references, `unlearn`, save.

    from unlearning.train.config import load_train_config
    from unlearning.train.run import run_train
    result = run_train(load_train_config("configs/train/npo_tofu_mini.yaml"))
    result["model_dir"], result["history"]["steps"][-1]

Steps (``setup`` -> ``train`` -> ``save``, in this order):
1. load the model bundle (dtype "auto": bfloat16 on CUDA, float32 on CPU) and the forget/retain rows
   (``data.source``: "tofu-mini" = the zoo's generated data, "hub" = locuslab/TOFU, or a local folder; MUSE's
   raw text with ``data.benchmark: muse``; `unlearning.benchmarks`);
2. build the method (JensUn's target ids default to the tokenizer's " No idea"; BalDRO-G's retain subset
   generator is seeded per rank) and its inputs (`unlearning.train.inputs`): the ForgetRetain dataset (with
   IDK alternates for IdkDPO) and the reference log-probs the method reads (NPO, TNPO, IdkDPO), computed with
   the initial model or loaded from the shared cache; a live frozen copy is kept only when
   ``method.needs_ref_model`` (KL/JSD retain, RMU, UNDIAL);
4. ``unlearn`` with checkpoints under ``<output_dir>/checkpoints`` (a rerun resumes), the evaluation hook
   at the start and every ``eval.every`` epochs (fractions allowed);
5. rank 0 writes ``<output_dir>/model`` (weights + tokenizer), ``history.json``, ``config.yaml`` and
   ``result.json``.

Evaluation: pass ``eval_hook(model, epoch) -> dict``. With ``eval.enabled: true`` and no hook, the factory
``unlearning.benchmarks.hook.make_train_eval_hook(config, bundle)`` is used (the hook of ``data.benchmark``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from unlearning.methods import build_method
from unlearning.methods.names import resolve_method_name
from unlearning.methods.reference import frozen_copy
from unlearning.models.loading import resolve_dtype
from unlearning.train.config import TrainConfig
from unlearning.train.data import data_source, retain_seed
from unlearning.train.inputs import run_inputs
from unlearning.train.loop import EvalHook, unlearn

EvalHookFactory = Callable[[TrainConfig, Any], EvalHook]
__all__ = ["run_train", "build_run_method", "default_eval_hook_factory", "resolve_dtype"]


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def build_run_method(config: TrainConfig, tokenizer: Any) -> Any:
    """The configured method, with tokenizer-dependent defaults filled in."""
    hp = dict(config.method.hparams)
    if resolve_method_name(config.method.name).method == "JensUn" and "target_token_ids" not in hp:
        from unlearning.methods.jensun import jensun_target_ids

        hp["target_token_ids"] = jensun_target_ids(tokenizer)
    if config.method.baldro is not None:
        hp["baldro"] = config.method.baldro
    generator = torch.Generator().manual_seed(retain_seed(config.train.seed + 1, _rank()))
    return build_method(config.method.name, generator=generator, **hp)


def default_eval_hook_factory() -> EvalHookFactory:
    """The benchmarks' `make_train_eval_hook(config, bundle)` (`unlearning.benchmarks.hook`: the hook of the
    config's `data.benchmark`)."""
    from unlearning.benchmarks.hook import make_train_eval_hook

    return make_train_eval_hook


def _eval_hook_for(config: TrainConfig, bundle: Any, eval_hook: EvalHook | None,
                   factory: EvalHookFactory | None = None) -> EvalHook | None:
    ev = config.eval
    if eval_hook is None and ev.enabled:
        eval_hook = (factory or default_eval_hook_factory())(config, bundle)
    if eval_hook is None:
        return None

    def hook(model: torch.nn.Module, epoch: int | float) -> dict[str, Any] | None:
        if epoch == 0 and not ev.on_start:
            return None
        return eval_hook(model, epoch)
    return hook


def run_train(config: TrainConfig, eval_hook: EvalHook | None = None, resume: bool = True,
              log: Callable[[str], None] | None = None,
              eval_hook_factory: EvalHookFactory | None = None,
              on_eval: Callable[[dict[str, Any]], None] | None = None,
              inputs_cache: str | Path | None = None,
              on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one unlearning job end to end; returns a JSON-able result dict (see module docstring).
    `eval_hook_factory(config, bundle) -> hook` replaces the evaluator's default hook when eval is enabled;
    `on_eval(record)` receives every evaluation record ({"epoch", "step", **metrics}) as it is made (the sweep
    trainable reports each one to Ray); `inputs_cache`: a folder where the tokenised data and reference log-probs
    are shared between runs (`unlearning.train.inputs`); `on_step(record)`: the loop's position before the first
    step and after every optimizer step (`unlearn`'s `on_step`; the sweep trial's progress file)."""
    from unlearning.models.loading import load_bundle

    say = log if log is not None and _rank() == 0 else (lambda _m: None)
    out_dir = Path(config.output_dir)
    dtype = resolve_dtype(config.model.dtype)
    bundle = load_bundle(config.model.name, dtype=dtype, attn_implementation=config.model.attn_implementation,
                         template=config.model.template)
    model, tokenizer = bundle.model, bundle.tokenizer
    model.to(_device())
    say(f"model {config.model.name} ({dtype}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params)")

    source = data_source(config.data, config.model.name)
    method = build_run_method(config, tokenizer)
    data = run_inputs(config, bundle, method, source, cache_dir=inputs_cache, rank=_rank())
    say(f"data {config.data.forget_split}: {len(data.forget)} forget / {len(data.retain)} retain rows; "
        f"method {method!r}")
    if getattr(method, "attach_log", None) is not None and method.config.training_log is not None:  # LMCleaner
        from unlearning.models.training_log import open_training_log  # its training log ("zoo": replayed)

        method.attach_log(open_training_log(method.config.training_log, config.model.name))
    prepare = getattr(method, "prepare_model", None)  # T3 wraps the model (methods/t3.py), LUNAR reads the data
    if prepare is not None:
        model = prepare(model, data, tokenizer)
    ref_model = frozen_copy(model) if method.needs_ref_model else None

    history = unlearn(model, method, data, config.train, ref_model=ref_model,
                      eval_hook=_eval_hook_for(config, bundle, eval_hook, eval_hook_factory),
                      checkpoint_dir=out_dir / "checkpoints", resume=resume, eval_every=config.eval.every,
                      on_eval=on_eval, on_step=on_step)

    result = {
        "output_dir": str(out_dir), "model_dir": str(out_dir / "model"), "method": method.hparams(),
        "method_name": config.method.name, "final": history.steps[-1] if history.steps else {},
        "evals": history.evals, "history": history.to_dict(),
    }
    if _rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out_dir / "model")
        tokenizer.save_pretrained(out_dir / "model")
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        (out_dir / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
        (out_dir / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "history"},
                                                        indent=1, default=str))
        say(f"saved {out_dir / 'model'}")
    return result
