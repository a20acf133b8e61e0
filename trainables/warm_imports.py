"""Warm Ray workers: the heavy modules a trial needs are imported when a Ray worker process starts, before any
trial's clock does.

    ray.init(runtime_env={"worker_process_setup_hook": SETUP_HOOK, ...})     # sweeps.operations.service.init_ray

Ray runs `import_heavy` in every worker of the sweep's job as the worker starts (`worker_process_setup_hook`),
before the worker runs anything. Tune starts a trial's actor in such a worker and calls the trial started
(`on_trial_start`: the recorder's clock, `wall_s`) once the actor is up, so the imports are paid in the actor's
start, with the sweep's once-per-search costs, and the first trial's own clock runs as the later ones' do (they
reuse the actor: `reuse_actors`). Without it the first trial's function imported torch, transformers, deepspeed,
the model's transformers modules and this project's training and evaluation code on its own clock (8 s on an
idle 2-core machine, 15-30 s on a busy one) and the later ones did not. The sweep still pays the imports once per
actor: this makes per-trial times (progress, ETA, time budgets, benchmarks) comparable, it does not remove them.
It then does once what a process's first trial would (`_first_use`: torch's first autograd step, a tiny Llama's
first forward, backward, save/load and generate, deepspeed's CPU comm op). A module that is missing or fails to import is skipped, as is a first use that fails: the hook
never stops a worker from starting (the trial imports it again and fails there, with its own error).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import time

SETUP_HOOK = "trainables.warm_imports.import_heavy"
ENV_OFF = "UNLEARN_SWEEP_COLD_WORKERS"  # =1 in the driver's environment: no hook (to measure what it saves)
HEAVY_MODULES = (
    "torch", "torch.distributed", "transformers", "transformers.models.llama.modeling_llama",
    "transformers.models.auto.modeling_auto", "deepspeed", "ray.train", "ray.tune",
    "unlearning.train.run", "unlearning.train.loop", "unlearning.train.engine", "unlearning.evaluation.config",
    "unlearning.methods", "trainables.worker_loop", "trainables.trial",
    # the evaluation a trial's first evaluation point imports (rouge-score and nltk, scipy.stats, sklearn: 2.8 s of
    # the first trial's own clock before they were here, measured by profiling a process's first and second run)
    "unlearning.benchmarks.hook", "unlearning.benchmarks.tofu", "unlearning.evaluation.tofu_eval",
    "unlearning.evaluation.robust_eval", "unlearning.evaluation.generation", "unlearning.evaluation.gibberish",
    "unlearning.metrics.tofu_metrics", "unlearning.metrics.rouge", "unlearning.data.tokenization",
)
imported: dict[str, float] = {}  # module -> seconds its import took in this process (the hook's record)
finished_at: float | None = None  # time.time() when the hook finished in this process (None: it did not run)


def _first_use() -> None:
    """What the first trial of a process would do once and the later ones not: torch's first autograd step
    (its thread pools, oneDNN), and on a CPU-only machine deepspeed's shared-memory comm op that
    `deepspeed.init_distributed` loads (built once into TORCH_EXTENSIONS_DIR, loaded once per process)."""
    import torch

    x = torch.ones(8, 8, requires_grad=True)
    (x @ x).sum().backward()
    # a Llama's first forward, backward, save/load and generate (attention dispatch, transformers' checkpoint
    # mappings and generation set-up) on a throw-away model of a few hundred weights
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, pad_token_id=0,
                                        bos_token_id=1, eos_token_id=2))
    ids = torch.tensor([[1, 3, 4, 5]])
    tiny(input_ids=ids, labels=ids).loss.backward()
    import tempfile

    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as folder:   # from_pretrained's first call compiles its checkpoint mappings
        tiny.save_pretrained(folder)
        tiny = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        tiny.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, do_sample=False)
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    if accelerator.device_name() == "cpu":
        builder = accelerator.create_op_builder("ShareMemCommBuilder")
        if builder is not None:
            builder.load()


def import_heavy(modules: tuple[str, ...] = HEAVY_MODULES) -> dict[str, float]:
    """Import `modules` (skipping those that fail); {module: seconds}. Quiet: deepspeed's accelerator lines
    are nothing a user can act on."""
    for name in modules:
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a worker must start whatever its environment lacks
            continue
        imported[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
        _first_use()
        imported["(first use: autograd step, a Llama's forward/backward/load/generate, deepspeed's CPU comm op)"] = \
            time.perf_counter() - t0
    global finished_at
    finished_at = time.time()
    return dict(imported)
