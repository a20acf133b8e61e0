"""`unlearn-sweep prepare tofu-mini`: generate the offline benchmark and train the tiny zoo models a run needs.

    unlearn-sweep prepare tofu-mini                         # target + retain90 (the default sweep's pair)
    unlearn-sweep prepare tofu-mini --models all            # + retain95, retain99, base
    unlearn-sweep prepare tofu-mini --size tiny             # a smaller, faster zoo
    unlearn-sweep prepare tofu-mini --force                 # rebuild even if the cache is valid
"""

from __future__ import annotations

import shutil
import time

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
                        "\n\n  unlearn-sweep prepare tofu-mini --size tiny --models target,retain90")
    def prepare(
        benchmark: str = typer.Argument("tofu-mini", help="What to prepare (only the embedded 'tofu-mini')."),
        size: str = typer.Option("small", help="Zoo model size: tiny, small or base."),
        models: str = typer.Option("target,retain90", help="Zoo models to train (comma-separated: base, target, "
                                   "retain99, retain95, retain90) or 'all'. Others are trained on demand."),
        authors: int = typer.Option(TofuMiniConfig.n_authors,
                                    help="Number of fictitious authors in tofu-mini (20 QA each)."),
        seed: int = typer.Option(0, help="Seed of the benchmark and the training."),
        force: bool = typer.Option(False, help="Delete the cached zoo for this config and rebuild it."),
    ) -> None:
        """Generate tofu-mini and train the zoo models asked for (cached; a no-op when already built)."""
        from unlearning.models.prepare import prepare as run_prepare
        from unlearning.models.zoo import ZooConfig, zoo_dir

        if benchmark != "tofu-mini":
            raise ConfigError("prepare", field="benchmark", value=benchmark,
                              fix="only 'tofu-mini' is prepared locally; real benchmarks load from the hub by name")
        try:
            cfg = ZooConfig(data=TofuMiniConfig(n_authors=authors, seed=seed), size=size)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError("prepare", field="authors", value=authors, fix=str(exc)) from None
        if force and zoo_dir(cfg).exists():
            shutil.rmtree(zoo_dir(cfg))
        t0 = time.perf_counter()
        manifest = run_prepare(cfg, models=models, log=lambda m: console.print(f"[dim]{m}[/dim]", soft_wrap=True))
        wall = time.perf_counter() - t0
        console.print(memorisation_rich_table(manifest))
        if manifest.get("cached"):
            console.print(f"cache valid: nothing to do ({wall:.1f}s). Zoo at {zoo_dir(cfg)}")
        else:
            console.print(f"prepared in {manifest['timings_s']['total']:.1f}s. Zoo at {zoo_dir(cfg)}")
