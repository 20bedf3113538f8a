"""Run-scoped local process registry: every process kaic starts locally can be found and stopped by run id.

Local counterpart of the `kaic.dev/run-id` label: `start(run_id, cmd, ...)` launches a process in its own
session (so it leads a new process group), and records `{pid, pgid, cmd, port, started, create_time}` as
JSON in `$KAIC_HOME/runs/<run-id>/procs/<name>.json`. Teardown calls `stop_all(run_id)` (SIGTERM to
each group, SIGKILL after a grace period) even when the step that started them crashed; `alive(run_id)`
says what is still running. `create_time` guards against pid reuse: a record whose pid now belongs to
another process counts as gone.

    proc = localproc.start(run_id, [sys.executable, "-m", "x"], name="model-server", port=port, log=path)
    ...
    localproc.stop_all(run_id)   # idempotent: returns what it stopped

No orphans: every process kaic starts (`launch`: here and every executor node, kaic/executor/process.py)
carries its starter's owner mark in its environment (`KAIC_OWNER`: pid, create time, KAIC_HOME), and the
starter's guard (kaic/guard.py, one small process per starter) SIGKILLs the group of every process so
marked the moment the starter dies, even by SIGKILL; chains unwind level by level (executor -> step ->
torchrun; workers also set the kernel's parent-death signal themselves). Each record also names its owner;
`reap_orphans(home)`, run at the start of every kaic command, stops what a dead owner left behind if its
guard could not (killed too): registered processes and every process marked with a dead owner of that home.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import psutil

from kaic import env, guard
from kaic.errors import ConfigError
from kaic.safeload import load_json


@dataclass(frozen=True)
class ProcRecord:
    name: str
    pid: int
    pgid: int
    cmd: tuple[str, ...]
    port: int | None
    started: float  # unix time
    create_time: float  # psutil's create_time of pid, to tell a reused pid from ours
    owner_pid: int = 0  # the process that started it (0: unknown, an older record)
    owner_create_time: float = 0.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "cmd": list(self.cmd)}, indent=1)

    @property
    def owner_alive(self) -> bool:
        """The starting process still runs (the same process, not a reused pid)."""
        if not self.owner_pid:
            return False
        try:
            p = psutil.Process(self.owner_pid)
            return abs(p.create_time() - self.owner_create_time) < 0.01 and running(p)
        except psutil.NoSuchProcess:
            return False

    @staticmethod
    def from_json(text: str) -> ProcRecord:
        d = load_json(text, "process record", expect=dict)
        return ProcRecord(
            d["name"],
            int(d["pid"]),
            int(d["pgid"]),
            tuple(d["cmd"]),
            d.get("port"),
            float(d["started"]),
            float(d["create_time"]),
            int(d.get("owner_pid") or 0),
            float(d.get("owner_create_time") or 0.0),
        )


# --- parent-death signal ----------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    fn: Callable[..., int] = libc.prctl
    return fn


_PRCTL = _prctl()


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; a no-op elsewhere).

    Called first thing in a process that must not outlive its parent (a torchrun worker)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


_OWNER: dict[int, float] = {}


def owner() -> tuple[int, float]:
    """(pid, create time) of this process, for a record's owner fields."""
    pid = os.getpid()
    if pid not in _OWNER:
        _OWNER[pid] = psutil.Process(pid).create_time()
    return pid, _OWNER[pid]


# --- launching: the one launch policy for everything kaic starts locally ----------------------------

OWNER_VAR = guard.OWNER_VAR


def owner_prefix() -> str:
    """"<pid> <create time> ": how every mark of this process begins (what its guard looks for)."""
    pid, created = owner()
    return f"{pid} {created!r} "


def owner_mark(home: Path) -> str:
    """`KAIC_OWNER`'s value for what this process launches: "<pid> <create time> <KAIC_HOME>"."""
    return owner_prefix() + str(Path(home).absolute())


def parse_mark(value: str) -> tuple[int, float, Path] | None:
    """(owner pid, owner create time, home) from a `KAIC_OWNER` value; None for anything else."""
    parts = value.split(" ", 2)
    if len(parts) != 3 or not parts[2]:
        return None
    try:
        return int(parts[0]), float(parts[1]), Path(parts[2])
    except ValueError:
        return None


_KAIC_ROOT = str(Path(__file__).resolve().parent.parent)  # where the guard imports kaic from
_GUARD_LOCK = threading.Lock()
_GUARD_FD: dict[int, int] = {}  # pid -> the write end of its guard's pipe


def _drop_inherited_guard() -> None:
    """In a forked child: the parent's pipe end must not keep the parent's guard waiting."""
    for fd in _GUARD_FD.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _GUARD_FD.clear()


os.register_at_fork(after_in_child=_drop_inherited_guard)


def start_guard() -> None:
    """Start this process's guard (kaic/guard.py) once: it kills what this process launched as soon as
    this process dies, however it dies. Its environment has no KAIC_* variable: it is not part of a run."""
    if os.getpid() in _GUARD_FD:
        return
    with _GUARD_LOCK:
        pid = os.getpid()
        if pid in _GUARD_FD:
            return
        read_end, write_end = os.pipe()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KAIC_")}
        environ["PYTHONPATH"] = os.pathsep.join([_KAIC_ROOT, *filter(None, [environ.get("PYTHONPATH")])])
        try:
            subprocess.Popen(
                [sys.executable, "-c", "import sys; from kaic import guard; sys.exit(guard.main(sys.argv[1:]))",
                 str(read_end), owner_prefix()],
                pass_fds=(read_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=environ,
                start_new_session=True,  # a signal to this process's group is not for the guard
            )
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        _GUARD_FD[pid] = write_end


def launch(
    argv: Sequence[str],
    *,
    home: Path,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group, stdin from /dev/null), marked with this
    process as its owner: this process's guard kills its group the moment this process dies (even by
    SIGKILL), and the next kaic command reaps it if the guard could not (`reap_orphans`).

    No preexec_fn: CPython then starts the child with vfork, not fork (a parent-death signal set in a
    preexec cost 3-6 ms a launch here). Raises OSError when it cannot start."""
    start_guard()
    environ = {**(os.environ if env is None else env), OWNER_VAR: owner_mark(home)}
    return subprocess.Popen(
        list(argv),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=environ,
        start_new_session=True,
    )


def procs_dir(run_id: str, home: Path | None = None) -> Path:
    return (home or env.kaic_home()) / "runs" / run_id / "procs"


def start(
    run_id: str,
    cmd: Sequence[str],
    *,
    name: str,
    port: int | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    home: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session (its own process group) and register it under the run."""
    d = procs_dir(run_id, home)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.json"
    if path.exists() and _is_ours(ProcRecord.from_json(path.read_text())):
        raise RuntimeError(f"a process named {name!r} is already registered and alive for run {run_id}")
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below, kept by the child)
    try:
        proc = launch(cmd, home=home or env.kaic_home(), env=environ, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        created = 0.0
    record = ProcRecord(name, proc.pid, proc.pid, tuple(cmd), port, time.time(), created, *owner())
    write_record(path, record)
    return proc


def write_record(path: Path, record: ProcRecord) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(record.to_json())
    tmp.replace(path)


def records(run_id: str, home: Path | None = None) -> list[ProcRecord]:
    d = procs_dir(run_id, home)
    out = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out.append(ProcRecord.from_json(p.read_text()))
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            continue  # a torn or foreign file is not a process of ours
    return out


_PROC = Path("/proc")


def running(p: psutil.Process) -> bool:
    """Not dead: a zombie leader whose other threads still run (Python shutting down) counts as running.

    On Linux each task's state is read from /proc/<pid>/task/*/stat; elsewhere psutil's status is used.
    """
    if not _PROC.is_dir():
        return bool(p.status() != psutil.STATUS_ZOMBIE)
    try:
        tasks = list((_PROC / str(p.pid) / "task").iterdir())
    except OSError:
        return False  # gone
    for t in tasks:
        try:
            state = (t / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def _is_ours(rec: ProcRecord) -> bool:
    """True while rec.pid is the very process we started (not a zombie, not a reused pid)."""
    try:
        p = psutil.Process(rec.pid)
        return abs(p.create_time() - rec.create_time) < 0.01 and running(p)
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and running(p):
                out.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return out


def group_alive(rec: ProcRecord) -> list[int]:
    """Pids still alive in the record's process group (workers may outlive their leader)."""
    try:
        leader = psutil.Process(rec.pgid)
        if not _is_ours(rec) and os.getpgid(leader.pid) == rec.pgid and running(leader):
            return []  # the pid was reused by a new session leader: that group is not ours
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
    return sorted(p.pid for p in _group_members(rec.pgid))


def alive(run_id: str, home: Path | None = None) -> dict[str, list[int]]:
    """{name: alive pids} for the run's registered processes that still have something running."""
    return {r.name: pids for r in records(run_id, home) if (pids := group_alive(r))}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(rec: ProcRecord, grace_s: float = 5.0) -> bool:
    """SIGTERM the record's group, SIGKILL after `grace_s`; True when nothing of it is left."""
    if not group_alive(rec):
        return True
    _signal_group(rec.pgid, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while time.monotonic() < end:
        _reap(rec.pid)
        if not group_alive(rec):
            return True
        time.sleep(0.05)
    _signal_group(rec.pgid, signal.SIGKILL)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        _reap(rec.pid)
        if not group_alive(rec):
            return True
        time.sleep(0.05)
    return not group_alive(rec)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(run_id: str, grace_s: float = 5.0, home: Path | None = None) -> dict[str, bool]:
    """Stop every registered process of the run; remove the records of those that are gone.

    Returns {name: stopped}. Idempotent: a second call finds nothing alive and returns {} once records
    are removed.
    """
    result = {}
    for rec in records(run_id, home):
        ok = stop(rec, grace_s)
        result[rec.name] = ok
        if ok:
            (procs_dir(run_id, home) / f"{rec.name}.json").unlink(missing_ok=True)
    return result


def forget(run_id: str, name: str, home: Path | None = None) -> None:
    """Drop a record (after the caller stopped the process itself)."""
    (procs_dir(run_id, home) / f"{name}.json").unlink(missing_ok=True)


def record_files(home: Path) -> list[Path]:
    """Every process record under a KAIC_HOME (runs/*/procs/*.json)."""
    runs = home / "runs"
    return sorted(runs.glob("*/procs/*.json")) if runs.is_dir() else []


def marked(home: Path) -> Iterator[ProcRecord]:
    """Every live process launched for `home` (its environment's `KAIC_OWNER` names it), as a record of
    its owner: found whether or not its starter lived to register it. One /proc read per process."""
    want = Path(home).absolute()
    for pid, value in guard.marks():
        mark = parse_mark(value)
        if mark is None or mark[2] != want:
            continue
        try:
            p = psutil.Process(pid)
            created = p.create_time()
            yield ProcRecord(p.name(), pid, os.getpgid(pid), tuple(p.cmdline()), None, created, created, *mark[:2])
        except (psutil.Error, ProcessLookupError):
            continue


def reap_orphans(home: Path, grace_s: float = 2.0) -> list[str]:
    """Stop every registered process whose owner is dead, and drop records of what is gone.

    Run at the start of each kaic command: what a SIGKILLed executor or step left behind does not
    outlive the next command in the same KAIC_HOME: the registered process groups, then the groups of
    the processes marked (`KAIC_OWNER`) with a dead owner of this home. Returns one line per group stopped."""
    stopped = []
    for path in record_files(home):
        try:
            rec = ProcRecord.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            continue  # a torn or foreign file is not a process of ours
        if rec.owner_alive:
            continue
        if group_alive(rec):
            ok = stop(rec, grace_s)
            run = path.relative_to(home / "runs").parts[0]
            stopped.append(f"{rec.name} (pid {rec.pid}, run {run})" + ("" if ok else ": still alive after SIGKILL"))
            if not ok:
                continue
        path.unlink(missing_ok=True)
    groups = {os.getpgrp()}  # never our own
    for rec in marked(home):
        if rec.pgid in groups or rec.owner_alive or not group_alive(rec):
            continue
        groups.add(rec.pgid)
        ok = stop(rec, grace_s)
        stopped.append(f"{rec.name} (pid {rec.pid}, its starter pid {rec.owner_pid} is gone)"
                       + ("" if ok else ": still alive after SIGKILL"))
    return stopped


def registered_ports(run_id: str, home: Path | None = None) -> list[int]:
    return sorted({r.port for r in records(run_id, home) if r.port is not None})
