"""Set up a run directory, run the engine, handle signals, and answer with a :class:`WorkflowResult`."""

from __future__ import annotations

import contextlib
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
from kaic.executor.liveness import claim, release
from kaic.executor.manifest import WorkflowModel, prepare
from kaic.executor.process import write_python_shims
from kaic.executor.scheduler import Engine, EngineConfig
from kaic.executor.status import NodeStatus, StatusBook, load_status
from kaic.preflight import creatable_dir, writable_file
from kaic.safeload import load_json_file

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
    check_options(options)
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
    again, their outputs are reused; everything else runs. The exit handler always runs again (its
    teardown must see this attempt's processes and objects, not the interrupted one's)."""
    check_options(options)
    status = load_status(run_dir / STATUS_FILE)
    manifest = load_json_file(run_dir / MANIFEST_FILE, f"--resume {run_dir}: {MANIFEST_FILE}", expect=dict)
    parameters = load_json_file(run_dir / PARAMETERS_FILE, f"--resume {run_dir}: {PARAMETERS_FILE}",
                                expect=dict)
    model = prepare(manifest, {str(k): str(v) for k, v in parameters.items()}, str(run_dir / MANIFEST_FILE),
                    options.workflow_templates)
    meta = status.get("metadata") or {}
    name = str(meta.get("name") or run_dir.name)
    previous = previous_nodes(status, name, str(run_dir / STATUS_FILE))
    return _execute(model, name, str(meta.get("uid") or uuid.uuid4()), run_dir, options, previous)


def previous_nodes(status: Mapping[str, Any], name: str, source: str) -> dict[str, NodeStatus]:
    """The nodes a resumed run may reuse, by name: everything but the exit handler's."""
    nodes = (status.get("status") or {}).get("nodes") or {}
    if not isinstance(nodes, dict):
        raise ConfigError(f"{source}: status.nodes is a {type(nodes).__name__}, expected a map")
    exit_prefix = f"{name}.onExit"
    previous = {}
    for raw in nodes.values():
        try:
            node = NodeStatus.from_dict(raw)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise ConfigError(f"{source}: a node is not a node status: {str(raw)[:80]!r}") from None
        if node.name == exit_prefix or (node.name[len(exit_prefix):][:1] in (".", "(", "[") and \
                node.name.startswith(exit_prefix)):
            continue  # the handler, its retries wf.onExit(0) and children wf.onExit.x / wf.onExit[0]
        previous[node.name] = node
    return previous


def check_options(options: ExecutorOptions) -> None:
    """Everything the run will write to, checked before anything runs."""
    if options.max_parallel < 1:
        raise ConfigError(f"--max-parallel {options.max_parallel}: must be at least 1")
    creatable_dir(options.kaic_home / "runs", f"KAIC_HOME {options.kaic_home}:")
    if options.status_json is not None:
        writable_file(options.status_json, "--status-json")


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
    reserve = _reserve(run_dir)
    claim(run_dir)
    book = StatusBook(name, uid, run_dir / STATUS_FILE, progress, reserve=reserve)
    config = EngineConfig(
        run_dir=run_dir,
        store_dir=options.kaic_home / "objects" / "artifacts" / name,
        max_parallel=options.max_parallel,
        extra_env=dict(options.env),
        base_env=dict(os.environ),  # what child processes inherit, not configuration
    )
    engine = Engine(model, name, uid, book, config, previous)
    restore = _install_signals(engine, run_dir) if options.handle_signals else {}
    book.start_writer()
    phase, message = "Error", "executor error"
    try:
        phase, message = engine.run()
    except OSError as exc:  # the machine failed the executor (a full disk): a final phase, not a traceback
        phase, message = "Error", f"executor error: {exc.strerror or exc}" + (
            f" ({exc.filename})" if exc.filename else "")
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
        book.phase, book.message = phase, message
        book.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            sweep(run_dir)
            book.close()
        finally:
            release(run_dir)
            reserve.unlink(missing_ok=True)
    if options.status_json is not None:
        book.write(options.status_json)
    return WorkflowResult(name=name, phase=phase, message=message, run_dir=run_dir, nodes=dict(book.nodes))


RESERVE_BYTES = 1 << 20


def _reserve(run_dir: Path) -> Path:
    """1 MiB kept free for the final status.json: on a full disk the status book deletes it and writes."""
    path = run_dir / ".reserve"
    try:
        with open(path, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)
    except OSError:
        path.unlink(missing_ok=True)  # already full: nothing to keep
    return path


def sweep(run_dir: Path, grace_s: float = 2.0) -> list[str]:
    """Stop whatever this run's steps left registered (the exit handler normally did; a second
    SIGINT cancels it). Returns the names stopped. (Node process groups are gone by then: each is
    killed when its node ends.)"""
    from kaic import localproc

    stopped = []
    for path in sorted((run_dir / "procs").glob("*.json")):
        try:
            rec = localproc.ProcRecord.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            continue
        if localproc.group_alive(rec):
            localproc.stop(rec, grace_s)
            stopped.append(rec.name)
        if not localproc.group_alive(rec):
            path.unlink(missing_ok=True)
    return stopped


def kill_groups(engine: Engine, run_dir: Path) -> None:
    """SIGKILL every running node's process group and every group registered under the run, at once
    (the second SIGINT)."""
    from kaic import localproc

    engine.kill()
    for path in (run_dir / "procs").glob("*.json"):
        try:
            rec = localproc.ProcRecord.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            continue
        if localproc.group_alive(rec):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pgid, signal.SIGKILL)


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _install_signals(engine: Engine, run_dir: Path) -> dict[int, _Handler]:
    """SIGINT/SIGTERM: the first stops the nodes (SIGTERM, then SIGKILL after a grace period) and runs
    the exit handler; the second also stops the exit handler and SIGKILLs every registered process
    group of the run at once."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    count = [0]

    def escalate() -> None:
        engine.interrupt("interrupted twice")
        kill_groups(engine, run_dir)

    def handler(signum: int, frame: FrameType | None) -> None:
        # Never take locks inside a signal handler: the interrupted code may hold them.
        count[0] += 1
        target = engine.interrupt if count[0] == 1 else escalate
        args: tuple[str, ...] = ("interrupted",) if count[0] == 1 else ()
        threading.Thread(target=target, args=args, daemon=True).start()

    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    return previous
