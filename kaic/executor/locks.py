"""``synchronization``: mutexes and semaphores shared by the nodes of this run (and of every
workflow run by the same kaic process). A semaphore's limit comes from the ConfigMap key it names,
read from ``$KAIC_HOME/configmaps/<name>.yaml`` (a ConfigMap manifest or a plain map)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaic.executor.process import CancelScope


class LockError(ValueError):
    pass


@dataclass(frozen=True)
class LockSpec:
    name: str  # "mutex/<name>" or "semaphore/<configmap>/<key>"
    limit: int


def lock_specs(sync: Mapping[str, Any] | None, configmaps: Path) -> list[LockSpec]:
    """The locks a ``synchronization`` block asks for, in a fixed order (no lock-order deadlocks)."""
    if not sync:
        return []
    out: dict[str, LockSpec] = {}
    mutexes = list(sync.get("mutexes") or []) + ([sync["mutex"]] if sync.get("mutex") else [])
    for m in mutexes:
        name = f"mutex/{m.get('name')}"
        out[name] = LockSpec(name, 1)
    sems = list(sync.get("semaphores") or []) + ([sync["semaphore"]] if sync.get("semaphore") else [])
    for s in sems:
        ref = s.get("configMapKeyRef") or {}
        cm, key = str(ref.get("name")), str(ref.get("key"))
        name = f"semaphore/{cm}/{key}"
        out[name] = LockSpec(name, _semaphore_limit(configmaps / f"{cm}.yaml", key))
    return [out[k] for k in sorted(out)]


def _semaphore_limit(path: Path, key: str) -> int:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LockError(f"semaphore {path.stem}/{key}: cannot read {path}: {exc}") from None
    data = doc.get("data", doc) if isinstance(doc, dict) else {}
    try:
        return max(1, int(str(data[key])))
    except (KeyError, TypeError, ValueError):
        raise LockError(f"semaphore {path.stem}/{key}: {path} has no integer {key!r}") from None


class LockTable:
    """Named counting locks; waiting gives up when the cancel scope is cancelled."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}

    def acquire(self, specs: list[LockSpec], scope: CancelScope) -> bool:
        taken: list[LockSpec] = []
        for spec in specs:
            with self._cond:
                while self._held.get(spec.name, 0) >= spec.limit and not scope.cancelled:
                    self._cond.wait(0.2)
                if scope.cancelled:
                    break
                self._held[spec.name] = self._held.get(spec.name, 0) + 1
                taken.append(spec)
        if len(taken) < len(specs):
            self.release(taken)
            return False
        return True

    def release(self, specs: list[LockSpec]) -> None:
        with self._cond:
            for spec in specs:
                self._held[spec.name] -= 1
            self._cond.notify_all()


LOCKS = LockTable()  # one per process, so that concurrent runs in one process exclude each other
