"""Local teardown: stop every registered process of the run (process group SIGTERM, then SIGKILL), drop
stale records, and check that no process of the run is alive and none of its ports still listens."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from kaic import localproc


@dataclass
class LocalSweep:
    stopped: dict[str, bool] = field(default_factory=dict)
    alive: dict[str, list[int]] = field(default_factory=dict)
    listening: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0


def port_listening(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        return s.connect_ex((host, port)) == 0


def sweep(run_id: str, home: Path, grace_s: float) -> LocalSweep:
    started = time.monotonic()
    ports = localproc.registered_ports(run_id, home)  # before the records are removed
    result = LocalSweep(stopped=localproc.stop_all(run_id, grace_s, home))
    result.alive = localproc.alive(run_id, home)
    result.listening = [p for p in ports if port_listening(p)]
    result.elapsed_s = time.monotonic() - started
    return result
