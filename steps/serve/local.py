"""Serving on this machine: KServe's ModelServer as a separate process on a free loopback port,
registered in the run's process registry (`kaic.localproc`) so teardown can stop it whatever happens."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from kaic import localproc
from kaic.results import Outcome, Status
from steps.serve.exercise import Endpoint, LoadPlan, exercise, not_run, wait_ready
from steps.serve.export import ExportedModel

PROC_NAME = "model-server"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_command(model_dir: Path, port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "steps.serve.model_server",
        "--model-dir",
        str(model_dir),
        "--host",
        HOST,
        "--http-port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def child_environ() -> dict[str, str]:
    """This process's environment, with kaic's source root importable (an uninstalled checkout works too)."""
    root = str(Path(__file__).resolve().parents[2])
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, environ.get("PYTHONPATH")) if p)
    return environ


def _tail(path: Path, n: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    except OSError:
        return ""


def serve_locally(
    model: ExportedModel,
    plan: LoadPlan,
    *,
    run_id: str,
    home: Path,
    work_dir: Path,
    ready_timeout_s: float,
    workers: int,
    threads: int,
    log: Callable[[str], None],
) -> list[Outcome]:
    port = free_port()
    server_log = work_dir / "model_server.log"
    proc = localproc.start(
        run_id,
        server_command(model.dir, port, workers, threads),
        name=PROC_NAME,
        port=port,
        log=server_log,
        cwd=work_dir,
        environ=child_environ(),
        home=home,
    )
    log(f"model server pid {proc.pid} on {HOST}:{port} (log {server_log})")
    ep = Endpoint(HOST, port)
    gateway = Outcome.skipped(
        "serve.gateway_route", "local profile: no cluster, so no Gateway API to route through"
    )
    try:

        def died() -> str | None:
            code = proc.poll()
            return None if code is None else f"model server exited with code {code}: {_tail(server_log)}"

        try:
            ready_s = wait_ready(ep, model.name, ready_timeout_s, died)
        except (TimeoutError, RuntimeError) as exc:
            return [
                Outcome("serve.ready", Status.FAILED, f"{exc}"),
                gateway,
                *not_run("the model server never became ready"),
            ]
        out = [
            Outcome(
                "serve.ready",
                Status.PASSED,
                f"ModelServer ready on {ep.base_url} (pid {proc.pid})",
                metric="serve_time_to_ready_s",
                value=ready_s,
                unit="s",
            )
        ]
        out += exercise(ep, ep, model, plan, log)
        out.append(gateway)
        return out
    finally:
        for rec in localproc.records(run_id, home):
            if rec.name == PROC_NAME and rec.pid == proc.pid and localproc.stop(rec):
                localproc.forget(run_id, PROC_NAME, home)
        proc.poll()
