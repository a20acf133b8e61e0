"""Ctrl-C / SIGINT / SIGTERM stop the whole sweep: Tune saves its state, the driver closes what it opened.

    with SweepInterrupts() as stop:
        with stop.tuning():            # around tuner.fit(): a signal ends the Tune run gracefully
            tuner.fit()
        if stop.signal: ...            # "SIGINT" / "SIGTERM": do not start the next search
    # outside stop.tuning() a signal raises SweepInterrupted at once (e.g. during shared preparation)

Inside `tuning()` the first signal asks Tune to end the experiment the way its own Ctrl-C handling does
(it saves the experiment state and leaves the running trials unfinished, so `Tuner.restore` resumes them):
Tune listens to SIGUSR1 for that, so the handler re-sends SIGUSR1 to this process until `fit()` returns.
Tune's own SIGINT handler is disabled (`TUNE_DISABLE_SIGINT_HANDLER`) so SIGINT and SIGTERM behave the same
and this module always knows a stop was asked for. A second signal stops at once (SweepInterrupted).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(Exception):
    """A command was stopped by a signal; `signal` names it ("SIGINT" / "SIGTERM"), `exit_code` is 130 / 143."""

    def __init__(self, sig: str, where: str = ""):
        self.signal = sig
        self.exit_code = EXIT_CODES.get(sig, 130)
        super().__init__(f"interrupted by {sig}{': ' + where if where else ''}")


SweepInterrupted = Interrupted  # the name the sweep driver raises


def raise_on_sigterm() -> None:
    """Make SIGTERM stop the current command like Ctrl-C does (cleanup in `finally` blocks runs)."""
    def handler(_signum: int, _frame: Any) -> None:
        raise Interrupted("SIGTERM")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


class SweepInterrupts:
    """Signal handling of one sweep driver (see the module docstring). Main thread only."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._in_fit = False
        self._previous: dict[int, Any] = {}
        self._nudger: threading.Thread | None = None

    def __enter__(self) -> "SweepInterrupts":
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self.install()
        return self

    def install(self) -> None:
        """(Re)install the handlers: call again after `ray.init`, whose core worker takes SIGTERM for itself
        (it would abort the driver with a core dump)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in HANDLED:
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)
        if hasattr(signal, "SIGUSR1"):  # never let a late SIGUSR1 fall on its default action (exit)
            self._previous.setdefault(signal.SIGUSR1, signal.signal(signal.SIGUSR1, lambda *_: None))

    def __exit__(self, *exc: Any) -> None:
        self._in_fit = False
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        first = self.signal is None
        self.signal = self.signal or name
        if not first or not self._in_fit:
            raise SweepInterrupted(self.signal)
        self._nudge_tune()

    def _nudge_tune(self) -> None:
        """Ask Tune to stop (SIGUSR1, its public stop signal) until fit() has returned."""
        def loop() -> None:
            while self._in_fit:
                os.kill(os.getpid(), signal.SIGUSR1)
                threading.Event().wait(1.0)

        if self._nudger is None or not self._nudger.is_alive():
            self._nudger = threading.Thread(target=loop, name="tune-stop", daemon=True)
            self._nudger.start()

    @contextmanager
    def tuning(self) -> Iterator[None]:
        """Around `tuner.fit()`: a signal ends the Tune run gracefully instead of raising."""
        if self.signal:
            raise SweepInterrupted(self.signal)
        self._in_fit = True
        try:
            yield
        finally:
            self._in_fit = False
