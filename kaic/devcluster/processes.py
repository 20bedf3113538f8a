"""Start the dev cluster's processes, record them in a state file, and stop exactly those (never by name).

Each process runs in its own session (its PID is its process group), with its output in one log file. The
state file records PID, start time (so a reused PID is never taken for ours) and the ports it listens on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessSpec:
    """A process to start: argv, extra environment, the ports it will listen on, and its readiness test."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    ready: Callable[[], bool] | None = None   # True once the process serves; None: started is ready
    ready_timeout: float = 300.0  # generous: a loaded 2-core machine is slow, and a slow start is no failure
    cwd: Path | None = None


@dataclass(frozen=True)
class Running:
    """One started process as the state file records it."""

    name: str
    pid: int
    create_time: float
    ports: tuple[int, ...]
    log: str
    argv: tuple[str, ...]

    def process(self) -> psutil.Process | None:
        """The live process, or None when it exited (or its PID now belongs to another process)."""
        try:
            proc = psutil.Process(self.pid)
            # create_time is boot time + start ticks (10 ms): equal for the same process, different for a reused PID
            if abs(proc.create_time() - self.create_time) > 0.001 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None


class StartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_listens(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class State:
    """The state file: the processes started, in start order."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Running]:
        if not self.path.is_file():
            return []
        data = json.loads(self.path.read_text())
        return [Running(**{**p, "ports": tuple(p["ports"]), "argv": tuple(p["argv"])}) for p in data["processes"]]

    def write(self, running: list[Running]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": [asdict(r) for r in running]}, indent=1))
        tmp.replace(self.path)

    def add(self, running: Running) -> None:
        self.write([*self.read(), running])


def start(spec: ProcessSpec, logs: Path, state: State) -> Running:
    """Start one process in its own session, record it, and wait until its readiness test passes."""
    proc, running = launch(spec, logs, state)
    wait_ready(spec, proc, running)
    return running


def start_all(specs: list[ProcessSpec], logs: Path, state: State) -> list[Running]:
    """Start several processes at once, then wait for each to be ready."""
    launched = [launch(spec, logs, state) for spec in specs]
    for spec, (proc, running) in zip(specs, launched, strict=True):
        wait_ready(spec, proc, running)
    return [running for _, running in launched]


def launch(spec: ProcessSpec, logs: Path, state: State) -> tuple[subprocess.Popen[bytes], Running]:
    """Start one process in its own session (its PID is its process group) and record it."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.name}.log"
    with open(log, "ab") as sink:
        proc = subprocess.Popen(spec.argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, **spec.env}, cwd=spec.cwd, start_new_session=True)
    running = Running(spec.name, proc.pid, psutil.Process(proc.pid).create_time(), spec.ports, str(log),
                      tuple(spec.argv))
    state.add(running)
    return proc, running


def wait_ready(spec: ProcessSpec, proc: subprocess.Popen[bytes], running: Running) -> None:
    deadline = time.monotonic() + spec.ready_timeout
    while True:
        if proc.poll() is not None:
            raise StartError(f"{spec.name} exited with code {proc.returncode} at start: see {running.log}")
        if spec.ready is None or _ready(spec.ready):
            return
        if time.monotonic() > deadline:
            raise StartError(f"{spec.name} was not ready within {spec.ready_timeout:.0f} s: see {running.log}")
        time.sleep(0.5)


def _ready(test: Callable[[], bool]) -> bool:
    try:
        return test()
    except Exception:  # a readiness probe that raises (connection refused, 503) means: not yet
        return False


def stop(running: Running, grace: float = 15.0) -> None:
    """SIGTERM the recorded process group, SIGKILL it after `grace` seconds; a gone process is fine."""
    proc = running.process()
    if proc is None:
        return
    _signal_group(running.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except psutil.TimeoutExpired:
        _signal_group(running.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(5)
    # Children left in the group (a process that spawned helpers) go too.
    _signal_group(running.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_all(state: State) -> list[Running]:
    """Stop every recorded process, last started first; clear the state file; return what was recorded."""
    running = state.read()
    for proc in reversed(running):
        stop(proc)
    if state.path.exists():
        state.path.unlink()
    return running


def wait_ports_closed(ports: list[int], timeout: float = 20.0) -> list[int]:
    """Ports still listening after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        open_ports = [p for p in ports if port_listens(p)]
        if not open_ports or time.monotonic() > deadline:
            return open_ports
        time.sleep(0.3)
