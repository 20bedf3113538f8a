"""Teardown on this machine: real processes started through the run's registry (a KServe ModelServer left
running as if serve had crashed, and a process group that ignores SIGTERM) are stopped; no process or
port of the run is left; running it twice is fine; CPU-only capacity is skipped with the reason."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kaic import localproc
from kaic.results import RunContext, Status
from kaic.stepkit import StepContext
from steps.serve.exercise import Endpoint, wait_ready
from steps.serve.local import HOST, child_environ, free_port, server_command
from steps.serve.tiny_model import write_tiny_model
from steps.teardown import Config, teardown
from steps.teardown.local import port_listening

pytestmark = pytest.mark.integration

STUBBORN = """
import os, signal, socket, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
IGNORE = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", IGNORE])
print(child.pid, flush=True)
time.sleep(600)
"""


def _ctx(home: Path, run_id: str) -> StepContext:
    from kaic.profiles import load_profile
    from kaic.stores.objects import open_store

    store = open_store(f"file://{home / 'objects'}", source="test")
    return StepContext(
        RunContext(run_id, "0.1.0", datetime.now(UTC), "local"), load_profile("local"), store, home, "teardown"
    )


def test_teardown_stops_a_left_behind_model_server_and_frees_its_port(kaic_home: Path, tmp_path: Path) -> None:
    run_id = "kaic-test-crashed-serve"
    model_dir = write_tiny_model(tmp_path / "model", steps=20)
    port = free_port()
    proc = localproc.start(
        run_id,
        server_command(model_dir, port, 1, 1),
        name="model-server",
        port=port,
        log=tmp_path / "server.log",
        environ=child_environ(),
        home=kaic_home,
    )
    try:
        wait_ready(Endpoint(HOST, port), "digits", 90, lambda: None if proc.poll() is None else "server exited")
        assert port_listening(port)
        ctx = _ctx(kaic_home, run_id)
        ctx.store.put_bytes(ctx.key("provision", "fingerprint.json"), json.dumps({"allocatable": {}}).encode())
        deleted, reclaimed = teardown(Config(grace_s=5), ctx, None)
        assert deleted.status is Status.PASSED, deleted.message
        assert "stopped model-server" in deleted.message
        assert deleted.metric == "teardown_time_s"
        assert proc.poll() is not None
        assert not port_listening(port)
        assert localproc.alive(run_id, kaic_home) == {}
        assert localproc.records(run_id, kaic_home) == []
        assert reclaimed.status is Status.SKIPPED
        assert "CPU-only" in reclaimed.message
        again, _ = teardown(Config(grace_s=5), ctx, None)  # twice is fine
        assert again.status is Status.PASSED
        assert "nothing of the run was left" in again.message
    finally:
        localproc.stop_all(run_id, grace_s=1, home=kaic_home)


def test_a_group_that_ignores_sigterm_is_killed_children_included(kaic_home: Path, tmp_path: Path) -> None:
    import time

    import psutil

    run_id = "kaic-test-stubborn"
    port = free_port()
    out = tmp_path / "stubborn.log"
    proc = localproc.start(
        run_id, [sys.executable, "-c", STUBBORN, str(port)], name="stubborn", port=port, log=out, home=kaic_home
    )
    try:
        deadline = time.monotonic() + 30
        while not (out.read_text().strip() and port_listening(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(out.read_text().split()[0])
        assert set(localproc.alive(run_id, kaic_home)["stubborn"]) == {proc.pid, child}
        deleted, _ = teardown(Config(grace_s=0.5), _ctx(kaic_home, run_id), None)
        assert deleted.status is Status.PASSED, deleted.message
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        assert not port_listening(port)
    finally:
        localproc.stop_all(run_id, grace_s=0.1, home=kaic_home)


def test_a_process_that_cannot_be_stopped_fails_the_check(
    kaic_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run_id = "kaic-test-unstoppable"
    proc = localproc.start(
        run_id, [sys.executable, "-c", "import time; time.sleep(600)"], name="sleeper", home=kaic_home
    )
    try:
        monkeypatch.setattr(localproc, "_signal_group", lambda pgid, sig: None)  # signals lost
        deleted, _ = teardown(Config(grace_s=0.2), _ctx(kaic_home, run_id), None)
        assert deleted.status is Status.FAILED
        assert f"sleeper ([{proc.pid}]) still alive" in deleted.message
    finally:
        monkeypatch.undo()
        localproc.stop_all(run_id, grace_s=0.1, home=kaic_home)
        assert proc.wait(5) is not None


def test_registry_records_and_refuses_a_duplicate_live_name(kaic_home: Path) -> None:
    run_id = "kaic-test-registry"
    p = localproc.start(
        run_id, [sys.executable, "-c", "import time; time.sleep(600)"], name="x", port=1234, home=kaic_home
    )
    try:
        (rec,) = localproc.records(run_id, kaic_home)
        assert (rec.pid, rec.pgid, rec.port, rec.name) == (p.pid, p.pid, 1234, "x")
        assert localproc.registered_ports(run_id, kaic_home) == [1234]
        with pytest.raises(RuntimeError, match="already registered"):
            localproc.start(run_id, [sys.executable, "-c", "pass"], name="x", home=kaic_home)
        assert localproc.stop_all(run_id, grace_s=2, home=kaic_home) == {"x": True}
        assert localproc.stop_all(run_id, home=kaic_home) == {}
    finally:
        localproc.stop_all(run_id, grace_s=0.1, home=kaic_home)
