"""Set up a run directory, run the engine, handle signals, and answer with a :class:`WorkflowResult`."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import string
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from kaic.env import kaic_home
from kaic.errors import ConfigError
from kaic.executor.manifest import WorkflowModel, prepare
from kaic.executor.process import write_python_shims
from kaic.executor.scheduler import Engine, EngineConfig
from kaic.executor.status import NodeStatus, StatusBook, load_status

MANIFEST_FILE = "manifest.json"
PARAMETERS_FILE = "parameters.json"
STATUS_FILE = "status.json"


def default_parallelism() -> int:
    return (os.cpu_count() or 1) * 4


@dataclass
class ExecutorOptions:
    """How to run. ``progress``: True prints one line per node phase change to stderr, a callable
    receives each changed :class:`NodeStatus`, False is quiet."""

    kaic_home: Path = field(default_factory=kaic_home)
    max_parallel: int = field(default_factory=default_parallelism)
    name: str | None = None
    status_json: Path | None = None
    progress: bool | Callable[[NodeStatus], None] = False
    env: dict[str, str] = field(default_factory=dict)
    workflow_templates: Sequence[Mapping[str, Any]] = ()
    handle_signals: bool = True  # SIGINT/SIGTERM stop the run (only when called from the main thread)


@dataclass
class WorkflowResult:
    name: str
    phase: str  # "Succeeded" | "Failed" | "Error"
    message: str
    run_dir: Path
    nodes: dict[str, NodeStatus]  # by node id

    @property
    def ok(self) -> bool:
        return self.phase == "Succeeded"

    def node(self, name: str) -> NodeStatus | None:
        """A node by its full name (``wf.A``) or display name (``A``), the first match."""
        return next((n for n in self.nodes.values() if n.name == name), None) or next(
            (n for n in self.nodes.values() if n.display_name == name), None
        )


class LinePrinter:
    """``  12:01:02  Running    dag-diamond.A`` per phase change; StepGroups are left out."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, node: NodeStatus) -> None:
        if node.type == "StepGroup" or node.phase == "Pending":
            return
        line = f"  {time.strftime('%H:%M:%S')}  {node.phase:<10} {node.name}"
        if node.message and node.phase not in ("Running", "Succeeded"):
            line += f"  ({node.message})"
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def workflow_name(model: WorkflowModel, override: str | None) -> str:
    if override:
        return override
    if model.name:
        return model.name
    suffix = "".join(random.choices(string.ascii_lowercase, k=5))
    return f"{model.generate_name}{suffix}"


def run_workflow(
    manifest: Mapping[str, Any],
    parameters: Mapping[str, str],
    options: ExecutorOptions,
    source: str = "workflow",
) -> WorkflowResult:
    """Validate ``manifest`` (ConfigError on any problem) and run it to completion."""
    model = prepare(manifest, parameters, source, options.workflow_templates)
    name = workflow_name(model, options.name)
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"{source}: workflow name {name!r} is not a valid directory name")
    run_dir = options.kaic_home / "runs" / name
    if run_dir.exists():  # a fixed metadata.name run again: start that run over
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / MANIFEST_FILE).write_text(json.dumps(model.manifest, indent=1), encoding="utf-8")
    (run_dir / PARAMETERS_FILE).write_text(json.dumps(dict(parameters), indent=1), encoding="utf-8")
    return _execute(model, name, str(uuid.uuid4()), run_dir, options, previous=None)


def resume_workflow(run_dir: Path, options: ExecutorOptions) -> WorkflowResult:
    """Continue a stopped run in ``run_dir`` (``$KAIC_HOME/runs/<name>``): Succeeded pods are not run
    again, their outputs are reused; everything else runs."""
    try:
        manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        parameters = json.loads((run_dir / PARAMETERS_FILE).read_text(encoding="utf-8"))
        status = load_status(run_dir / STATUS_FILE)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{run_dir}: not a resumable run directory ({exc})") from None
    model = prepare(manifest, parameters, str(run_dir / MANIFEST_FILE), options.workflow_templates)
    previous = {}
    for raw in (status.get("status") or {}).get("nodes", {}).values():
        node = NodeStatus.from_dict(raw)
        previous[node.name] = node
    meta = status.get("metadata") or {}
    name = str(meta.get("name") or run_dir.name)
    return _execute(model, name, str(meta.get("uid") or uuid.uuid4()), run_dir, options, previous)


def find_run(run_id: str, home: Path) -> Path:
    """A run directory from a run id (``runs/<id>``) or a path."""
    for candidate in (home / "runs" / run_id, Path(run_id)):
        if (candidate / STATUS_FILE).exists():
            return candidate
    raise ConfigError(f"--resume {run_id}: no run {run_id!r} under {home / 'runs'}")


def _execute(
    model: WorkflowModel,
    name: str,
    uid: str,
    run_dir: Path,
    options: ExecutorOptions,
    previous: Mapping[str, NodeStatus] | None,
) -> WorkflowResult:
    progress: Callable[[NodeStatus], None] | None
    if options.progress is True:
        progress = LinePrinter()
    elif callable(options.progress):
        progress = options.progress
    else:
        progress = None
    write_python_shims(run_dir / "bin")
    (run_dir / "nodes").mkdir(exist_ok=True)
    book = StatusBook(name, uid, run_dir / STATUS_FILE, progress)
    config = EngineConfig(
        run_dir=run_dir,
        store_dir=options.kaic_home / "objects" / "artifacts" / name,
        max_parallel=max(1, options.max_parallel),
        extra_env=dict(options.env),
        base_env=dict(os.environ),  # what child processes inherit, not configuration
    )
    engine = Engine(model, name, uid, book, config, previous)
    restore = _install_signals(engine) if options.handle_signals else {}
    book.start_writer()
    phase, message = "Error", "executor error"
    try:
        phase, message = engine.run()
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
        book.phase, book.message = phase, message
        book.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        book.close()
    if options.status_json is not None:
        book.write(options.status_json)
    return WorkflowResult(name=name, phase=phase, message=message, run_dir=run_dir, nodes=dict(book.nodes))


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _install_signals(engine: Engine) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        # Never take locks inside a signal handler: the interrupted code may hold them.
        threading.Thread(target=engine.interrupt, args=("interrupted",), daemon=True).start()

    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    return previous
