"""The guard: a small process that kills what a launcher started, the moment the launcher dies.

Every process kaic launches (`kaic.localproc.launch`) carries its launcher's owner mark in its
environment (`KAIC_OWNER=<pid> <create time> <KAIC_HOME>`), inherited by whatever it starts in turn. The
first launch in a process starts that process's guard, which blocks reading a pipe whose only write end
the launcher holds. However the launcher ends (exit, exception, SIGKILL, OOM), the kernel closes that end;
the guard wakes, SIGKILLs the process group of every process marked with the launcher's pid and create
time until none is left, and exits. Chains unwind level by level: a killed `kaic step` wakes its own guard.

Import-light on purpose (os, pathlib, signal, sys, time; psutil only where there is no /proc): it runs as
``python -c "from kaic import guard; ..."`` once per launcher.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

OWNER_VAR = "KAIC_OWNER"
_KEY = OWNER_VAR.encode() + b"="


def mark_in(environ: bytes) -> str | None:
    """The `KAIC_OWNER` value in a NUL-separated environment block (/proc/<pid>/environ), if any."""
    for entry in environ.split(b"\0"):
        if entry.startswith(_KEY):
            return entry[len(_KEY) :].decode(errors="replace")
    return None


def marks() -> Iterator[tuple[int, str]]:
    """(pid, mark) of every live process this user may read that carries a mark (zombies have none)."""
    proc = Path("/proc")
    if not proc.is_dir():
        import psutil

        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if value := p.environ().get(OWNER_VAR):
                    yield p.pid, value
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            value = mark_in((entry / "environ").read_bytes())
        except OSError:
            continue
        if value is not None:
            yield int(entry.name), value


def kill_marked(prefix: str, rounds: int = 100, pause_s: float = 0.05) -> int:
    """SIGKILL the group of every process whose mark starts with `prefix`, again while any is left
    (one may have been starting another); returns how many processes were found."""
    found: set[int] = set()
    for _ in range(rounds):
        pids = [pid for pid, value in marks() if value.startswith(prefix) and pid != os.getpid()]
        if not pids:
            break
        found.update(pids)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(pause_s)
    return len(found)


def main(argv: list[str]) -> int:
    """``<fd> <owner prefix>``: wait for EOF on fd (the launcher is gone), then kill what it marked."""
    fd, prefix = int(argv[0]), argv[1]
    while os.read(fd, 4096):
        pass
    kill_marked(prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
