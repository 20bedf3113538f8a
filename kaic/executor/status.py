"""The node model and ``status.json`` (Argo-like), written off the critical path.

:class:`StatusBook` owns every node. A phase change calls the progress callback and marks the book
dirty; one writer thread writes ``status.json`` (write to a temporary file, then ``os.replace``; no
fsync) at most every :data:`WRITE_INTERVAL_S` while nodes change, and once more at the end.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaic.errors import ConfigError
from kaic.safeload import load_json_file

WRITE_INTERVAL_S = 0.25
FINAL_PHASES = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's scheme: the workflow name for the root, else ``<workflow>-<fnv32a(node name)>``."""
    return workflow_name if node_name == workflow_name else f"{workflow_name}-{fnv32a(node_name)}"


@dataclass
class NodeStatus:
    id: str
    name: str
    display_name: str
    type: str  # Pod, Steps, StepGroup, DAG, TaskGroup, Retry, Skipped, Suspend
    template_name: str
    phase: str = "Pending"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    children: list[str] = field(default_factory=list)
    parameters: list[dict[str, str]] = field(default_factory=list)
    result: str | None = None
    exit_code: str | None = None
    artifacts: list[dict[str, str]] = field(default_factory=list)
    inputs: list[dict[str, str]] = field(default_factory=list)
    memoization: dict[str, Any] | None = None  # memoizationStatus: hit, key, cacheName
    outbound_nodes: list[str] = field(default_factory=list)  # Steps/DAG: the nodes that end it
    started_mono: float = 0.0
    finished_mono: float = 0.0

    @property
    def fulfilled(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def failed_or_error(self) -> bool:
        return self.phase in ("Failed", "Error")

    def output(self, name: str) -> str | None:
        return next((p["value"] for p in self.parameters if p["name"] == name), None)

    def to_dict(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if self.parameters:
            outputs["parameters"] = self.parameters
        if self.artifacts:
            outputs["artifacts"] = self.artifacts
        if self.result is not None:
            outputs["result"] = self.result
        if self.exit_code is not None:
            outputs["exitCode"] = self.exit_code
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "displayName": self.display_name,
            "type": self.type,
            "templateName": self.template_name,
            "phase": self.phase,
            "message": self.message,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "children": list(self.children),
        }
        if self.inputs:
            d["inputs"] = {"parameters": self.inputs}
        if outputs:
            d["outputs"] = outputs
        if self.memoization is not None:
            d["memoizationStatus"] = self.memoization
        if self.outbound_nodes:
            d["outboundNodes"] = list(self.outbound_nodes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeStatus:
        outputs = d.get("outputs") or {}
        return cls(
            id=d["id"],
            name=d["name"],
            display_name=d.get("displayName", d["name"]),
            type=d.get("type", "Pod"),
            template_name=d.get("templateName", ""),
            phase=d.get("phase", "Pending"),
            message=d.get("message", ""),
            started_at=d.get("startedAt", ""),
            finished_at=d.get("finishedAt", ""),
            children=list(d.get("children") or []),
            parameters=list(outputs.get("parameters") or []),
            result=outputs.get("result"),
            exit_code=outputs.get("exitCode"),
            artifacts=list(outputs.get("artifacts") or []),
        )


ProgressCallback = Callable[[NodeStatus], None]


class StatusBook:
    """All nodes of one run, the workflow phase, and the status.json writer."""

    def __init__(self, workflow_name: str, uid: str, path: Path, progress: ProgressCallback | None,
                 reserve: Path | None = None) -> None:
        self.workflow_name = workflow_name
        self.reserve = reserve  # a file deleted on a full disk to make room for status.json
        self.write_error = ""
        self.uid = uid
        self.path = path
        self.progress = progress
        self.nodes: dict[str, NodeStatus] = {}
        self.phase = "Running"
        self.message = ""
        self.started_at = now_iso()
        self.finished_at = ""
        self.extra: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    # --- nodes
    def add(self, node: NodeStatus, parent: NodeStatus | None) -> NodeStatus:
        with self._lock:
            self.nodes[node.id] = node
            if parent is not None and node.id not in parent.children:
                parent.children.append(node.id)
        self._changed(node)
        return node

    def link(self, node: NodeStatus, parent: NodeStatus) -> None:
        """Make ``node`` a child of one more ``parent``."""
        with self._lock:
            if node.id not in parent.children:
                parent.children.append(node.id)
        self._changed(parent)

    def set_phase(self, node: NodeStatus, phase: str, message: str | None = None) -> None:
        with self._lock:
            if phase == "Running" and not node.started_at:
                node.started_at = now_iso()
                node.started_mono = time.monotonic()
            if phase in FINAL_PHASES:
                if not node.started_at:
                    node.started_at = now_iso()
                    node.started_mono = time.monotonic()
                node.finished_at = now_iso()
                node.finished_mono = time.monotonic()
            changed = phase != node.phase
            node.phase = phase
            if message is not None:
                node.message = message
        if changed:
            self._changed(node)

    def _changed(self, node: NodeStatus) -> None:
        if self.progress is not None:
            self.progress(node)
        self._dirty.set()

    def failures(self) -> list[dict[str, str]]:
        """``workflow.failures``: the failed or errored pods."""
        with self._lock:
            return [
                {
                    "displayName": n.display_name,
                    "message": n.message,
                    "templateName": n.template_name,
                    "phase": n.phase,
                    "podName": n.id,
                    "finishedAt": n.finished_at,
                }
                for n in self.nodes.values()
                if n.type == "Pod" and n.failed_or_error
            ]

    # --- status.json
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            nodes = {nid: n.to_dict() for nid, n in self.nodes.items()}
        status: dict[str, Any] = {
            "phase": self.phase,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "nodes": nodes,
        }
        if self.message:
            status["message"] = self.message
        status.update(self.extra)
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": self.workflow_name, "uid": self.uid},
            "status": status,
        }

    def write(self, path: Path | None = None) -> None:
        """Write status.json atomically. On a full disk the reserve file is given up and the write
        tried once more, so the final phase is recorded even then."""
        target = path or self.path
        text = json.dumps(self.to_dict(), indent=1)
        try:
            _atomic_write(target, text)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or self.reserve is None or not self.reserve.exists():
                raise
            self.reserve.unlink()
            _atomic_write(target, text)

    def start_writer(self) -> None:
        def loop() -> None:
            while True:
                self._dirty.wait()
                if self._stop.is_set():
                    return
                self._dirty.clear()
                try:
                    self.write()
                    self.write_error = ""
                except OSError as exc:  # a full disk mid-run: keep running, try again on the next change
                    self.write_error = f"status.json not written: {exc.strerror or exc}"
                if self._stop.wait(WRITE_INTERVAL_S):
                    return

        self.write()
        self._writer = threading.Thread(target=loop, name="kaic-status-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._writer is not None:
            self._writer.join()
        self.write()


def _atomic_write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def load_status(path: Path) -> dict[str, Any]:
    """A status.json through the bounded loader: a map whose ``status`` (if any) is a map."""
    data: dict[str, Any] = load_json_file(path, f"status file {path}", expect=dict)
    if not isinstance(data.get("status", {}), dict) or not isinstance(data.get("metadata", {}), dict):
        raise ConfigError(f"status file {path}: status and metadata must be maps")
    return data
