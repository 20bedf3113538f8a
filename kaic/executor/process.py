"""Running one node as a local process, and the primitives around it: cancellation scopes, slots
(parallelism limits) and one deadline timer thread. Nothing here polls: processes are waited on,
slots and sleeps wait on conditions and events, deadlines fire from a single timer thread.

Path mapping (Argo pods each have their own filesystem; here they share one):

- every node gets a private directory ``runs/<workflow>/nodes/<node-id>/``, its working directory,
  holding ``tmp/`` (also its ``TMPDIR``), ``root/`` (other mapped paths) and its logs
  ``stdout.log`` and ``stderr.log``;
- every ``/tmp`` path in ``command``, ``args``, script ``source``, ``env`` values and
  ``workingDir`` is rewritten to the node's private ``tmp/``, and output parameters / artifacts
  declared under ``/tmp`` are read from there;
- every other absolute path the template *declares* (output ``valueFrom.path``, input and output
  artifact ``path``, ``workingDir``) is mapped to ``root/<path>`` and rewritten the same way.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kaic import localproc

KILL_GRACE_S = 2.0


class CancelScope:
    """A cancellable set of running processes (the main workflow, or its exit handler)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._slots: weakref.WeakSet[Slots] = weakref.WeakSet()
        self.timer: Timer | None = None

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self.event.is_set():
                return
            self.reason = reason
            self.event.set()
            procs = list(self._procs)
            slots = list(self._slots)
        for proc in procs:
            terminate(proc, self.timer)
        for slot in slots:
            slot.wake()

    def watch(self, slots: Slots) -> None:
        with self._lock:
            self._slots.add(slots)

    def register(self, proc: subprocess.Popen[bytes]) -> bool:
        """Track a started process; False when the scope is already cancelled (stop it then)."""
        with self._lock:
            self._procs.add(proc)
            return not self.event.is_set()

    def kill(self) -> None:
        """SIGKILL every tracked process group at once."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)

    def unregister(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)


class Slots:
    """A counting limit whose waiters give up when their scope is cancelled."""

    def __init__(self, size: int) -> None:
        self.free = max(1, size)
        self._cond = threading.Condition()

    def acquire(self, scope: CancelScope) -> bool:
        with self._cond:
            while self.free <= 0 and not scope.cancelled:
                self._cond.wait()
            if scope.cancelled:
                return False
            self.free -= 1
            return True

    def try_acquire(self) -> bool:
        with self._cond:
            if self.free <= 0:
                return False
            self.free -= 1
            return True

    def release(self) -> None:
        with self._cond:
            self.free += 1
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Timer:
    """One thread that runs callbacks at deadlines (process deadlines, kill grace periods)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="kaic-timer", daemon=True)
        self._thread.start()

    def schedule(self, delay_s: float, callback: Callable[[], None]) -> int:
        handle = next(self._seq)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay_s, handle, callback))
            self._cond.notify()
        return handle

    def cancel(self, handle: int) -> None:
        with self._cond:
            self._cancelled.add(handle)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopped:
                    return
                _, handle, callback = heapq.heappop(self._heap)
                if handle in self._cancelled:
                    self._cancelled.discard(handle)
                    continue
            callback()


def terminate(proc: subprocess.Popen[bytes], timer: Timer | None) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period if it is still there."""
    _signal_group(proc, signal.SIGTERM)
    if timer is not None:

        def escalate() -> None:
            if proc.returncode is None:
                _signal_group(proc, signal.SIGKILL)

        timer.schedule(KILL_GRACE_S, escalate)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# ---------------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class PathMap:
    """How one node's container paths map onto the host (see the module docstring)."""

    node_dir: Path
    declared: tuple[str, ...] = ()

    @property
    def tmp(self) -> Path:
        return self.node_dir / "tmp"

    @property
    def work(self) -> Path:
        return self.node_dir

    def local(self, path: str) -> Path:
        """Where a container path lives on the host."""
        if path == "/tmp" or path.startswith("/tmp/"):
            return self.tmp / path[len("/tmp") :].lstrip("/")
        if path.startswith("/"):
            return self.node_dir / "root" / path.lstrip("/")
        return self.work / path

    def rewrite(self, text: str) -> str:
        """Rewrite ``/tmp`` and the declared absolute paths in one pass (a rewritten path, which may
        itself lie under the host's /tmp, is never rewritten again)."""
        if "/" not in text:
            return text
        others = sorted(
            (p for p in self.declared if p.startswith("/") and not (p == "/tmp" or p.startswith("/tmp/"))),
            key=len,
            reverse=True,
        )
        alternatives = "|".join([*(re.escape(p.rstrip("/")) for p in others), "/tmp"])
        pattern = re.compile(rf"(?<![\w.\-/~$])(?:{alternatives})(?![\w.\-])")

        def replace(m: re.Match[str]) -> str:
            return str(self.tmp) if m.group(0) == "/tmp" else str(self.local(m.group(0)))

        return pattern.sub(replace, text)


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class PodOutcome:
    exit_code: int | None  # None when it never started
    killed: str | None = None  # why it was killed (deadline, interrupted), if it was
    start_error: str | None = None


def python_argv(argv: list[str]) -> list[str]:
    """``python``/``python3`` commands run the current interpreter."""
    if argv and argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


def write_python_shims(bin_dir: Path) -> None:
    """``python``/``python3`` on the nodes' PATH exec the current interpreter (a symlink would lose
    a virtualenv, whose interpreter finds its ``pyvenv.cfg`` from the path it was started by)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
        shim.chmod(0o755)


def run_process(
    argv: list[str],
    *,
    home: Path,
    env: dict[str, str],
    cwd: Path,
    stdout: Path,
    stderr: Path,
    scope: CancelScope,
    timer: Timer,
    deadline_s: float | None,
    deadline_message: str,
    on_start: Callable[[], None] | None = None,
) -> PodOutcome:
    """Start ``argv`` in its own session (through `localproc.launch`: it dies with the executor, and a
    later kaic command finds it by its owner mark if the executor died first), wait for it (killing it
    at the deadline or when the scope is cancelled), and kill anything it left in its process group."""
    killed: list[str] = []
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            proc = localproc.launch(argv, home=home, env=env, cwd=cwd, stdout=out, stderr=err)
        except OSError as exc:
            return PodOutcome(None, start_error=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
    if not scope.register(proc):
        killed.append(scope.reason)
        terminate(proc, timer)
    handle = None
    if deadline_s is not None:

        def expire() -> None:
            if proc.returncode is None:
                killed.append(deadline_message)
                terminate(proc, timer)

        handle = timer.schedule(deadline_s, expire)
    if on_start is not None:
        on_start()
    code = proc.wait()
    scope.unregister(proc)
    if handle is not None:
        timer.cancel(handle)
    _signal_group(proc, signal.SIGKILL)  # stragglers left in the group (background jobs)
    if not killed and scope.cancelled and code != 0:
        killed.append(scope.reason)
    return PodOutcome(code, killed=killed[0] if killed else None)


def read_text(path: Path, limit: int = 256 * 1024) -> str:
    with open(path, "rb") as fh:
        return fh.read(limit).decode("utf-8", errors="replace")


def make_dirs(paths: Iterable[Path]) -> None:
    """Create directories, parents first, with as few system calls as possible (each costs on slow disks)."""
    for p in paths:
        try:
            p.mkdir()
        except FileExistsError:
            pass
        except FileNotFoundError:
            p.mkdir(parents=True, exist_ok=True)
