"""The `unlearn-sweep` command line: one typer app, one module per command under `unlearn_sweep/commands/`.

    unlearn-sweep --help
    unlearn-sweep prepare tofu-mini          # generate tofu-mini and train the tiny zoo models (cached)
    unlearn-sweep <command> --help           # every command has examples

User mistakes (`unlearning.errors.UserError`) are printed as one line and exit with status 2, never as a
traceback. A sweep that ran but did its job badly ends with one line and status 3 (no trial finished) or 4 (its
searches ended unfinished before the budget), `sweeps.operations.outcome`; Ctrl-C / SIGTERM exit 130 / 143.
"""

from __future__ import annotations

import os
import sys

import typer

from unlearning.errors import UserError

# Offline by default: the embedded default needs no hub, and a stray download would hang on closed networks.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
if not os.path.exists("/dev/nvidiactl"):  # no NVIDIA driver: DeepSpeed runs on the CPU (importing torch is slow)
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# quiet by default: no per-model "Loading weights" / "Writing model shards" bars, no tokenizers fork warning
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="unlearn-sweep",
    help="Hyperparameter sweeps for LLM unlearning on Ray: prepare data and models, train, evaluate, "
         "search, pick the Pareto front, export configs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Hyperparameter sweeps for LLM unlearning on Ray (run `unlearn-sweep COMMAND --help` for examples)."""


from unlearn_sweep.commands import register_all  # noqa: E402  (commands import the app-level helpers above)

register_all(app)


def main() -> None:
    """Entry point that turns user errors into one clear line (exit 2) and Ctrl-C / SIGTERM into one line
    (exit 130 / 143) after the command's own cleanup."""
    from sweeps.operations.interrupts import Interrupted, raise_on_sigterm
    from sweeps.operations.outcome import SweepUnfinished

    raise_on_sigterm()
    try:
        app(standalone_mode=False)
    except UserError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except SweepUnfinished as exc:  # the sweep ran to its end; the line says why it did not do its job
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        if not isinstance(exc, Interrupted):
            exc = Interrupted("SIGINT")
        typer.secho(f"stopped: {exc}", fg=typer.colors.YELLOW, err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # click turns a Ctrl-C inside its prompts into Abort
        typer.echo("stopped: interrupted by SIGINT", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
