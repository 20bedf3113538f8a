"""The dev cluster's process bookkeeping with real processes: start records PID and ports, stop ends exactly
the recorded process group and leaves no port open, and a recorded PID now owned by another process is left
alone."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kaic.devcluster.controlplane import http_ok
from kaic.devcluster.processes import ProcessSpec, State, free_port, port_listens, start, stop_all

pytestmark = pytest.mark.integration


def _server(name: str, port: int) -> ProcessSpec:
    # The server spawns a child in its process group: stopping must take the whole group.
    code = ("import http.server, subprocess, sys;"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
            f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)"
            ".serve_forever()")
    return ProcessSpec(name, [sys.executable, "-c", code], ports=(port,), ready=http_ok(f"http://127.0.0.1:{port}/"),
                       ready_timeout=30)


def test_stop_all_ends_the_recorded_process_groups_and_frees_their_ports(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    ports = [free_port(), free_port()]
    started = [start(_server(f"srv{i}", port), tmp_path / "logs", state) for i, port in enumerate(ports)]
    assert [r.name for r in state.read()] == ["srv0", "srv1"]
    assert all(port_listens(p) for p in ports)
    children = [child for r in started for child in r.process().children()]  # type: ignore[union-attr]
    assert len(children) == 2

    stopped = stop_all(state)

    assert [r.pid for r in stopped] == [r.pid for r in started]
    assert all(r.process() is None for r in started)
    assert not any(child.is_running() and child.status() != "zombie" for child in children)
    assert not any(port_listens(p) for p in ports)
    assert not state.path.exists()
    assert stop_all(state) == []  # idempotent


def test_a_recorded_pid_reused_by_another_process_is_left_alone(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    record = start(_server("srv", free_port()), tmp_path / "logs", state)
    stop_all(state)
    # A PID is reused by a process started after ours ended. Start times tick in 10 ms, so wait two ticks: two
    # processes forked within one tick have the same create time (as this test once did under pytest).
    time.sleep(0.02)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True)
    try:
        # The same PID with the recorded start time of a different process: not ours, never signalled.
        state.write([replace(record, pid=other.pid)])
        stop_all(state)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
