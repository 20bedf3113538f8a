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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from kaic import env


@dataclass(frozen=True)
class ProcRecord:
    name: str
    pid: int
    pgid: int
    cmd: tuple[str, ...]
    port: int | None
    started: float  # unix time
    create_time: float  # psutil's create_time of pid, to tell a reused pid from ours

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "cmd": list(self.cmd)}, indent=1)

    @staticmethod
    def from_json(text: str) -> ProcRecord:
        d = json.loads(text)
        return ProcRecord(
            d["name"],
            int(d["pid"]),
            int(d["pgid"]),
            tuple(d["cmd"]),
            d.get("port"),
            float(d["started"]),
            float(d["create_time"]),
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
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=environ,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        created = 0.0
    record = ProcRecord(name, proc.pid, proc.pid, tuple(cmd), port, time.time(), created)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.to_json())
    tmp.replace(path)
    return proc


def records(run_id: str, home: Path | None = None) -> list[ProcRecord]:
    d = procs_dir(run_id, home)
    out = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out.append(ProcRecord.from_json(p.read_text()))
        except (OSError, ValueError, KeyError):
            continue  # a torn or foreign file is not a process of ours
    return out


def running(p: psutil.Process) -> bool:
    """Not dead: a zombie leader whose other threads still run (Python shutting down) counts as running.

    On Linux each task's state is read from /proc/<pid>/task/*/stat; elsewhere psutil's status is used.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return bool(p.status() != psutil.STATUS_ZOMBIE)
    try:
        tasks = list((proc / str(p.pid) / "task").iterdir())
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


def registered_ports(run_id: str, home: Path | None = None) -> list[int]:
    return sorted({r.port for r in records(run_id, home) if r.port is not None})
