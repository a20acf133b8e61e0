"""The MLflow store behind a sweep: whether it can be written, why an operation failed, and the connection that
queues and retries what failed (the base of `sweeps.recording.tracking.Tracker`, which decides what is logged).

    from sweeps.recording.tracking_store import failure_cause, quiet_mlflow, store_problem
    store_problem("sqlite:////data/mlflow.db")       # None, or why it cannot be written now ("...: disk full (ENOSPC)")
    failure_cause(exc, tracking_uri)                  # "connection refused (ECONNREFUSED)", "read-only file system ...", ...
    with quiet_mlflow():                              # MLflow's own log records and warnings off the console
        client.log_batch(...)

`StoreConnection` holds the client, the bounded queue of failed operations and the failure counts: `_submit(describe,
fn)` runs `fn` after whatever is queued and queues it on failure (retried at most every `retry_interval_s`, and by
`flush()`); the first failure of each cause is one warning line; `behind(sweep_dir)` gives the end-of-sweep lines.
`sweeps.recording.tracking` re-exports `failure_cause`, `quiet_mlflow` and `store_problem`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sweeps.spec.sections import check_tracking_uri

log = logging.getLogger("sweeps.recording.tracking")  # the Tracker's warnings, under the name they have always had


@dataclass
class _Op:
    describe: str
    fn: Callable[[], None]


_ERRNO_CAUSES = {errno.ENOSPC: "disk full (ENOSPC)", errno.EDQUOT: "disk quota exceeded (EDQUOT)",
                 errno.EROFS: "read-only file system (EROFS)", errno.EACCES: "permission denied (EACCES)",
                 errno.EPERM: "permission denied (EPERM)", errno.ECONNREFUSED: "connection refused (ECONNREFUSED)",
                 errno.EHOSTUNREACH: "host unreachable (EHOSTUNREACH)", errno.ETIMEDOUT: "timed out (ETIMEDOUT)"}
_TEXT_CAUSES = (("disk is full", errno.ENOSPC), ("no space left", errno.ENOSPC), ("read-only file system", errno.EROFS),
                ("connection refused", errno.ECONNREFUSED), ("errno 111", errno.ECONNREFUSED),
                ("permission denied", errno.EACCES), ("no route to host", errno.EHOSTUNREACH),
                ("timed out", errno.ETIMEDOUT))
_QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3", "requests")
_QUIET_MODULES = ("mlflow.store.db.utils", "mlflow.store.tracking.sqlalchemy_store", "mlflow.utils.rest_utils")


def _sqlite_db(uri: str) -> Path | None:
    return Path(uri.split(":///", 1)[1]) if uri.split(":", 1)[0].split("+", 1)[0] == "sqlite" else None


def _read_only_fs(path: Path) -> bool:
    """Whether the file system holding `path` (or its nearest existing parent) is mounted read-only."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def failure_cause(exc: BaseException, tracking_uri: str | None = None) -> str:
    """What made a store operation fail, in a few words: disk full (ENOSPC), read-only file system (EROFS),
    permission denied (EACCES), connection refused (ECONNREFUSED), ...; else the exception's type and first line.
    sqlite's own words ("attempt to write a readonly database") are told apart by the database's file system."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        reason = getattr(e, "reason", None)  # urllib's URLError keeps the socket error here
        e = reason if isinstance(reason, BaseException) and id(reason) not in seen else e.__cause__ or e.__context__
    for e in chain:
        code = getattr(e, "errno", None)
        if code in _ERRNO_CAUSES:
            return _ERRNO_CAUSES[code]
    text = " ".join(str(e) for e in chain).lower()
    for needle, code in _TEXT_CAUSES:
        if needle in text:
            return _ERRNO_CAUSES[code]
    db = _sqlite_db(tracking_uri) if tracking_uri else None
    if "readonly database" in text or "unable to open database" in text:
        if db is not None and _read_only_fs(db.parent):
            return _ERRNO_CAUSES[errno.EROFS]
        return "read-only database (permission denied)" if "readonly" in text else "cannot open the database file"
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def quiet_mlflow():
    """MLflow's (and its HTTP and database libraries') log records and Python warnings off the console while an
    operation runs: the Tracker reports failures itself, one line per cause."""
    import importlib

    for module in _QUIET_MODULES:  # their loggers exist before the first operation, so they are found below
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    names = [n for n in list(logging.root.manager.loggerDict)
             if n in _QUIET_LOGGERS or n.startswith(tuple(f"{q}." for q in _QUIET_LOGGERS))]
    loggers = [logging.getLogger(n) for n in {*names, *_QUIET_LOGGERS}]  # children too: `disabled` is per logger
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, was in zip(loggers, before):
            lg.disabled = was


def _probe_folder(folder: Path, db: Path) -> str | None:
    """Write (and remove) a small file beside the database: the real cause when it cannot be written (a read-only
    mount, permissions, a full disk), not only what os.access says (root passes it on a full disk)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if db.exists():
            os.close(os.open(db, os.O_WRONLY))
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mlflow-probe-") as fh:
            fh.write(b"\0" * 65536)  # sqlite needs pages, not just a directory entry
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        where = db if db.exists() and exc.filename == str(db) else folder
        return f"{where}: {failure_cause(exc)}"
    return None


def store_problem(tracking_uri: str, timeout_s: float = 5.0) -> str | None:
    """Why the tracking store cannot be written right now (None when it can), found within `timeout_s`:
    an HTTP server must answer /health, a sqlite file (or its folder) must be writable, a database must accept
    a connection."""
    uri = check_tracking_uri(tracking_uri)
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    try:
        if scheme in ("http", "https"):
            import urllib.request

            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as resp:
                return None if resp.status == 200 else f"/health answered {resp.status}"
        if scheme == "sqlite":
            db = Path(uri[len("sqlite:///"):])
            return _probe_folder(db.parent, db)
        if scheme in ("postgresql", "mysql", "mssql"):
            import sqlalchemy

            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout_s)}
                                              if scheme != "mssql" else {})
            with engine.connect():
                return None
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return failure_cause(exc, uri)
    return None


class StoreConnection:
    """The client of one MLflow store, with the queue of operations that failed (see the module docstring).
    ``max_queue`` bounds the operations kept while the store is unreachable; ``enabled=False`` records nothing."""

    def __init__(self, tracking_uri: str, *, artifact_location: str | None = None, max_queue: int = 10_000,
                 retry_interval_s: float = 30.0, enabled: bool = True):
        self.tracking_uri = check_tracking_uri(tracking_uri)
        self.enabled = enabled
        self.artifact_location = artifact_location or self._default_artifacts()
        self.retry_interval_s = retry_interval_s
        self.queue: collections.deque[_Op] = collections.deque(maxlen=max_queue)
        self.dropped = 0
        self.failures: collections.Counter[str] = collections.Counter()  # failed attempts per cause
        self.off_reason: str | None = None  # why tracking is off (`open_tracker`), when it is
        self._client = None
        self._next_retry = 0.0

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (to send to Ray workers): without the client and the queue of this process."""
        if self.queue:
            log.warning("Tracker pickled with %d pending MLflow operation(s); they stay in this process", len(self.queue))
        state = dict(self.__dict__)
        state.update(_client=None, queue=collections.deque(maxlen=self.queue.maxlen), dropped=0,
                     failures=collections.Counter())
        return state


    def _default_artifacts(self) -> str | None:
        """sqlite stores keep artifacts beside the database (MLflow's default is ./mlruns in the cwd)."""
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri[len("sqlite:///"):])
            return (db.parent / "mlartifacts").as_uri()
        return None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            # "Creating initial MLflow database tables" / "Updating database tables": nothing to act on
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _submit(self, describe: str, fn: Callable[[], None]) -> bool:
        """Run ``fn`` after the queued operations; queue it on failure. True when it ran now."""
        if not self.enabled:
            return False
        op = _Op(describe, fn)
        if self.queue:
            self._enqueue(op)
            self._drain(force=False)
            return not self.queue
        try:
            with quiet_mlflow():
                fn()
            return True
        except Exception as exc:  # noqa: BLE001 - tracking must never raise into training
            self._failed(describe, exc)
            self._enqueue(op)
            self._next_retry = time.monotonic() + self.retry_interval_s
            return False

    def _failed(self, describe: str, exc: BaseException) -> None:
        """Count a failed attempt by its cause; the first of each cause is one warning line."""
        cause = failure_cause(exc, self.tracking_uri)
        self.failures[cause] += 1
        if self.failures[cause] == 1:
            log.warning("MLflow store %s: %s failed: %s; queued for retry (further failures with this cause are "
                        "counted, see the end of the sweep)", self.tracking_uri, describe, cause)

    def _enqueue(self, op: _Op) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(op)

    def _drain(self, force: bool) -> None:
        if not force and time.monotonic() < self._next_retry:
            return
        while self.queue:
            op = self.queue[0]
            try:
                with quiet_mlflow():
                    op.fn()
            except Exception as exc:  # noqa: BLE001
                self._failed(f"retry of {op.describe}", exc)
                self._next_retry = time.monotonic() + self.retry_interval_s
                return
            self.queue.popleft()

    def flush(self) -> bool:
        """Retry every queued operation now; True when nothing is left pending."""
        self._drain(force=True)
        return not self.queue

    @property
    def pending(self) -> list[str]:
        """Descriptions of the queued operations, oldest first."""
        return [op.describe for op in self.queue]

    def behind(self, sweep_dir: str | Path) -> list[str]:
        """The end-of-sweep lines when MLflow is behind points.jsonl (tracking off, operations pending or dropped):
        one per failure cause with its count, then the `unlearn-sweep sync` command; [] when MLflow is complete."""
        command = f"unlearn-sweep sync {Path(sweep_dir)}"
        if not self.enabled:
            why = f" ({self.off_reason})" if self.off_reason else ""
            return [f"MLflow is behind: tracking was off for this run{why}; every result is in points.jsonl: run "
                    f"`{command}` once the store can be written"]
        if not self.queue and not self.dropped:
            return []
        lines = [f"MLflow: {n} failed attempt(s): {cause}" for cause, n in self.failures.most_common()]
        lost = f", {self.dropped} dropped from the full queue" if self.dropped else ""
        lines.append(f"MLflow is behind: {len(self.queue)} operation(s) pending{lost} ({self.tracking_uri}); every "
                     f"result is in points.jsonl: run `{command}` once the store can be written")
        return lines
