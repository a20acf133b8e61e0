"""`unlearn-sweep prepare tofu-mini | muse-mini`: generate an offline benchmark and train the tiny zoo models it needs.

tofu-mini's default pair (target, retain90) is copied, not trained, when a pinned copy is there
(`unlearning.models.pinned_zoo`, $UNLEARN_SWEEP_PINNED_ZOO: the same two models on every machine that shares it).

    unlearn-sweep prepare tofu-mini                         # target + retain90 (the default sweep's pair)
    unlearn-sweep prepare tofu-mini --models all            # + retain95, retain99, base
    unlearn-sweep prepare tofu-mini --size tiny             # a smaller, faster zoo
    unlearn-sweep prepare tofu-mini --force                 # rebuild here, even if the cache is valid (trains the
                                                            # default pair too instead of copying a pinned one)
    unlearn-sweep prepare muse-mini                         # the muse-mini corpus, its target and retain models
"""

from __future__ import annotations

import shutil
import time
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from unlearning.data.tofu_mini import TofuMiniConfig
from unlearning.errors import ConfigError

console = Console()


def memorisation_rich_table(manifest: dict) -> Table:
    table = Table(title="Memorisation: mean per-token answer probability")
    splits = list(next(iter(manifest["memorisation"].values())))
    table.add_column("model")
    for s in splits:
        table.add_column(s, justify="right")
    for name, row in manifest["memorisation"].items():
        table.add_row(name, *(f"{row[s]:.3f}" for s in splits))
    return table


def register(app: typer.Typer) -> None:
    @app.command(epilog="Examples:\n\n  unlearn-sweep prepare tofu-mini\n\n  unlearn-sweep prepare tofu-mini --models all"
                        "\n\n  unlearn-sweep prepare tofu-mini --size tiny --models target,retain90"
                        "\n\n  unlearn-sweep prepare muse-mini")
    def prepare(
        benchmark: str = typer.Argument("tofu-mini", help="What to prepare: the embedded 'tofu-mini' or 'muse-mini'."),
        size: str = typer.Option("small", help="Zoo model size: tiny, small or base."),
        models: Optional[str] = typer.Option(None, help="Zoo models to train (comma-separated: base, target, "
                                             "retain99, retain95, retain90; muse-mini: target, retain) or 'all'. "
                                             "Default: the default sweep's pair (tofu-mini: target,retain90; "
                                             "muse-mini: both). Others are trained on demand."),
        authors: int = typer.Option(TofuMiniConfig.n_authors,
                                    help="Number of fictitious authors in tofu-mini (20 QA each)."),
        seed: int = typer.Option(0, help="Seed of the benchmark and the training."),
        force: bool = typer.Option(False, help="Delete the cached zoo for this config and rebuild it here: every "
                                   "model is trained on this machine, a pinned default pair included."),
    ) -> None:
        """Generate tofu-mini and train the zoo models asked for (cached; a no-op when already built)."""
        from trainables.warm_cache import start as warm_caches

        warm_caches()  # DeepSpeed's CPU op and the sweep's bytecode, at the lowest priority (once)
        from unlearning.models.prepare import prepare as run_prepare
        from unlearning.models.zoo import ZooConfig, zoo_dir

        if benchmark == "muse-mini":
            return _prepare_muse_mini(size, models, seed, force)
        if benchmark != "tofu-mini":
            raise ConfigError("prepare", field="benchmark", value=benchmark,
                              fix="only 'tofu-mini' and 'muse-mini' are prepared locally; real benchmarks load from "
                                  "the hub by name")
        try:
            cfg = ZooConfig(data=TofuMiniConfig(n_authors=authors, seed=seed), size=size)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError("prepare", field="authors", value=authors, fix=str(exc)) from None
        if force and zoo_dir(cfg).exists():
            shutil.rmtree(zoo_dir(cfg))
        t0 = time.perf_counter()
        manifest = run_prepare(cfg, models=models, log=lambda m: console.print(f"[dim]{m}[/dim]", soft_wrap=True),
                               pinned=not force)
        wall = time.perf_counter() - t0
        console.print(memorisation_rich_table(manifest))
        if manifest.get("cached"):
            console.print(f"cache valid: nothing to do ({wall:.1f}s). Zoo at {zoo_dir(cfg)}")
        else:
            console.print(f"prepared in {manifest['timings_s']['total']:.1f}s. Zoo at {zoo_dir(cfg)}")


def _prepare_muse_mini(size: str, models: Optional[str], seed: int, force: bool) -> None:
    """`prepare muse-mini`: the corpus and its target / retain models (`unlearning.models.muse_prepare`)."""
    from unlearning.data.muse_mini import MuseMiniConfig
    from unlearning.models.muse_prepare import prepare_muse
    from unlearning.models.muse_zoo import MuseZooConfig, muse_zoo_dir

    cfg = MuseZooConfig(data=MuseMiniConfig(seed=seed), size=size)
    if force and muse_zoo_dir(cfg).exists():
        shutil.rmtree(muse_zoo_dir(cfg))
    t0 = time.perf_counter()
    manifest = prepare_muse(cfg, models=models, log=lambda m: console.print(f"[dim]{m}[/dim]", soft_wrap=True))
    wall = time.perf_counter() - t0
    table = memorisation_rich_table(manifest)
    table.title = "Memorisation: mean per-token probability of the raw articles"
    console.print(table)
    if manifest.get("cached"):
        console.print(f"cache valid: nothing to do ({wall:.1f}s). Zoo at {muse_zoo_dir(cfg)}")
    else:
        console.print(f"prepared in {manifest['timings_s']['total']:.1f}s. Zoo at {muse_zoo_dir(cfg)}")
