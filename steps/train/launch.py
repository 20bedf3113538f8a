"""What every launcher returns, and the seam the step talks to (local processes or a cluster)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from kaic.stores import ObjectNotFound, ObjectStore
from steps.train.spec import WorkerSpec


@dataclass(frozen=True)
class LaunchResult:
    name: str
    ok: bool  # every worker exited 0 (or the Job/TrainJob completed)
    seconds: float
    message: str = ""  # why not ok: exit codes, deadline, log tail
    result: dict[str, Any] | None = None  # rank 0's measurements (JSON from the object store)
    killed: str = ""  # what the launcher killed on purpose (kill-and-resume)
    logs: list[str] = field(default_factory=list)  # where the workers' output is


class Launcher(Protocol):
    kind: str  # "local", "job", "trainjob"

    def launch(self, spec: WorkerSpec, world_size: int, name: str,
               kill_after_checkpoint: int | None = None) -> LaunchResult:
        """Run `world_size` workers to completion (or kill one after checkpoint k appears); never raises for a
        worker failure: that is a LaunchResult with ok=False."""
        ...


def read_result(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(store.get_bytes(key))
        return data
    except (ObjectNotFound, FileNotFoundError, ValueError):
        return None
