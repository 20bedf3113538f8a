"""`kaic run` end to end on this machine: the compiled conformance workflow through the local executor.

Real processes all the way: provision, data (Great Expectations), train (torchrun, 2 gloo workers),
serve (a KServe ModelServer under load), report, and teardown on exit. After a run, and after a run
interrupted with SIGINT, no process of the run and no port it opened may be left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kaic import localproc

pytestmark = pytest.mark.integration

KAIC = [sys.executable, "-m", "kaic.cli"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIC_")}
    scripts = str(Path(sys.executable).parent)
    return {**env, "KAIC_HOME": str(home), "PATH": f"{scripts}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


def _leftovers(home: Path) -> list[str]:
    """Processes still carrying this run's KAIC_HOME in their environment (every step inherits it)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid != os.getpid() and p.environ().get("KAIC_HOME") == str(home):
                found.append(f"{p.pid}: {' '.join(p.info['cmdline'] or [])[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _listening(port: int) -> bool:
    return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.net_connections(kind="inet"))


def _run_dir(home: Path) -> Path:
    runs = [d for d in (home / "runs").iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _assert_nothing_left(home: Path, run_dir: Path) -> None:
    run_id = run_dir.name
    ports = localproc.registered_ports(run_id, home)
    deadline = time.monotonic() + 10  # a killed process may take a moment to be reaped
    while _leftovers(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _leftovers(home) == []
    assert localproc.alive(run_id, home) == {}
    assert [p for p in ports if _listening(p)] == []


def test_kaic_run_goes_through_every_step_and_leaves_nothing_behind(tmp_path: Path) -> None:
    # As `make run` does it: KAIC_HOME unset, so the default ./.kaic relative to where kaic runs.
    home = tmp_path / ".kaic"
    env = {k: v for k, v in _env(home).items() if k != "KAIC_HOME"}
    proc = subprocess.run([*KAIC, "run", "--profile", "local"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = _run_dir(home)
    report = run_dir / "report" / "report.html"
    assert f"report: {report}" in proc.stdout

    status = json.loads((run_dir / "status.json").read_text())["status"]
    assert status["phase"] == "Succeeded"
    phases = {n["displayName"]: n["phase"] for n in status["nodes"].values()}
    for step in ("provision", "data", "train", "serve", "report"):
        assert phases[step] == "Succeeded", phases

    results = json.loads((run_dir / "report" / "results.json").read_text())
    steps = {r["step"] for r in results["rows"]}
    assert {"provision", "data", "train", "serve", "teardown"} <= steps  # teardown re-rendered the report
    by_check = {(r["check_id"], r.get("metric")): r["status"] for r in results["rows"]}
    assert by_check[("train.holdout_accuracy", "holdout_accuracy")] == "passed"
    assert by_check[("serve.prediction_parity", "serve_parity_mismatches")] == "passed"
    assert by_check[("teardown.deleted", "teardown_time_s")] == "passed"
    # Kubernetes-only requirements are skipped with a reason on this machine, never passed.
    assert by_check[("provision.gang_scheduler", None)] == "skipped"
    assert list((home / "results").glob(f"platform=local/date=*/{run_dir.name}.parquet"))
    _assert_nothing_left(home, run_dir)


def test_an_interrupted_run_still_tears_down_and_leaves_nothing_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen([*KAIC, "run", "--profile", "local"], env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        serving = False
        while time.monotonic() < deadline and proc.poll() is None and not serving:
            time.sleep(0.5)
            runs = list((home / "runs").glob("*/status.json")) if (home / "runs").exists() else []
            if runs:
                nodes = json.loads(runs[0].read_text() or "{}").get("status", {}).get("nodes", {})
                serving = any(n["displayName"] == "serve" and n["phase"] == "Running" for n in nodes.values())
        assert serving, "the serve step never started"
        run_id = _run_dir(home).name
        wait = time.monotonic() + 120  # interrupt once the model server is up and registered
        while not localproc.registered_ports(run_id, home) and time.monotonic() < wait:
            time.sleep(0.2)
        assert localproc.registered_ports(run_id, home), "the model server never registered its port"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out[-3000:]
    run_dir = _run_dir(home)
    status = json.loads((run_dir / "status.json").read_text())["status"]
    assert status["phase"] == "Failed"
    exit_nodes = [n for n in status["nodes"].values() if n["displayName"].startswith("onExit")]
    assert exit_nodes
    assert all(n["phase"] == "Succeeded" for n in exit_nodes), exit_nodes
    _assert_nothing_left(home, run_dir)
