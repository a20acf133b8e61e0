"""One sweep folder, one driver: an exclusive lock on `<sweep>/driver.lock`, with who holds it in `driver.json`.

    with DriverLock(sweep_dir) as lock:       # ConfigError (one line) when another live driver holds it
        lock.record(ray_session="/tmp/ray/session_...")   # what this driver started, for a later clean-up
        ...run the sweep...

The lock is an OS file lock (`filelock`, flock on Linux): the kernel releases it when its process dies, so a
driver killed with SIGKILL leaves no stale lock and `unlearn-sweep resume` simply takes over. What the dead
driver left running (the processes of the local Ray it had started, which can linger for minutes) is
stopped at take-over, found by the Ray session folder recorded in `driver.json`. The error for a live holder
names its pid, host, start time and command. On a shared folder whose filesystem ignores file locks (some NFS
setups), `driver.json` still names the last driver; run one driver per sweep there.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

from unlearning.errors import ConfigError

LOCK_FILE = "driver.lock"
INFO_FILE = "driver.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_ray_session(session_dir: str, log: Callable[[str], None] = print) -> int:
    """Terminate the processes of a local Ray session (cmdline mentions its session folder); returns how many."""
    import psutil

    name = Path(session_dir).name
    if not name.startswith("session_"):
        return 0
    procs = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid != os.getpid() and any(name in part for part in (p.info["cmdline"] or [])):
                procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if procs:
        log(f"stopped {len(procs)} process(es) left by the previous driver's Ray session {name}")
    return len(procs)


class DriverLock:
    """The sweep folder's driver lock (see the module docstring)."""

    def __init__(self, sweep_dir: str | Path, log: Callable[[str], None] = print):
        from filelock import FileLock

        self.dir = Path(sweep_dir)
        self.log = log
        self._lock = FileLock(str(self.dir / LOCK_FILE))
        self.info: dict[str, Any] = {}

    def previous(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / INFO_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _held(self) -> ConfigError:
        prev = self.previous()
        who = (f"pid {prev.get('pid')} on {prev.get('host')} since "
               f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(prev.get('started', 0)))} "
               f"({prev.get('command', '?')})") if prev else "another process"
        return ConfigError(str(self.dir), field="driver", value=who,
                           fix="this sweep is being run by that driver: wait for it (`unlearn-sweep status "
                               f"{self.dir}`), or stop it (Ctrl-C / kill {prev.get('pid', 'PID')}) and run "
                               f"`unlearn-sweep resume {self.dir}`")

    def check_free(self) -> None:
        """Raise the one-line ConfigError `acquire` would when another driver holds the folder (takes nothing,
        writes nothing: for refusing before anything is printed or started)."""
        from filelock import Timeout

        if not (self.dir / LOCK_FILE).exists():
            return
        try:
            self._lock.acquire(timeout=0.2)
        except Timeout:
            raise self._held() from None
        self._lock.release()

    def acquire(self) -> "DriverLock":
        from filelock import Timeout

        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0.5)
        except Timeout:
            raise self._held() from None
        prev = self.previous()
        if prev and prev.get("host") == socket.gethostname() and prev.get("pid") != os.getpid() \
                and not _alive(int(prev.get("pid", 0))):
            self.log(f"the previous driver (pid {prev.get('pid')}) is gone; taking over {self.dir}")
            if prev.get("ray_session"):
                stop_ray_session(prev["ray_session"], self.log)
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                     "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}
        self._write()
        return self

    def record(self, **fields: Any) -> None:
        """Add facts about this driver (e.g. the Ray session it started) to driver.json."""
        self.info.update(fields)
        self._write()

    def _write(self) -> None:
        tmp = self.dir / (INFO_FILE + ".tmp")
        tmp.write_text(json.dumps(self.info, indent=1) + "\n")
        os.replace(tmp, self.dir / INFO_FILE)

    def release(self) -> None:
        if self._lock.is_locked:
            self.info.update(ended=time.time())
            self._write()
            self._lock.release()

    def __enter__(self) -> "DriverLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
