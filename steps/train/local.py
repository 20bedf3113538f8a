"""Local launchers: torchrun with N worker processes, and N TensorFlow MultiWorkerMirroredStrategy workers.

Every process is started through `kaic.localproc` (its own process group, registered under the run id),
so teardown finds and stops anything left; each launch has a deadline after which its group is killed.
Kill-and-resume: once checkpoint k's manifest is in the checkpoint store, the launcher SIGKILLs rank 1's
worker process (pid from the worker's pid file); torchrun then tears the others down and exits non-zero.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kaic import checkpoint, localproc
from kaic.stores import ObjectStore
from kaic.stores.objects import open_store
from steps.train.launch import LaunchResult, read_result
from steps.train.spec import WorkerSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.05
_EXC_LINE = re.compile(r"^(\[rank\d+\]:\s*)?[\w.]+(Error|Exception): ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_argv(python: str, nproc: int, port: int, rdzv_id: str, spec: WorkerSpec) -> list[str]:
    return [python, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", rdzv_id,
            "--max-restarts", "0", "-m", "steps.train.worker", *spec.to_argv()]


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def worker_environ(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment plus what workers need: the repo on the path, one thread each, and
    deterministic cuBLAS."""
    env = dict(base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    env.update(extra or {})
    return env


def _tail(path: Path, n: int = 1500) -> str:
    """The last worker exception line in a log (torchrun's own ChildFailedError summary skipped), else its tail."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    errors = [ln.strip() for ln in text.splitlines()
              if _EXC_LINE.match(ln.strip()) and "ChildFailedError" not in ln]
    return errors[-1] if errors else text[-n:].strip()


@dataclass
class LocalLauncher:
    """torchrun on this machine (gloo on CPU, NCCL when workers get GPUs)."""

    run_id: str
    store: ObjectStore  # where rank 0's result JSON lands
    work_dir: Path
    deadline_s: float
    python: str = sys.executable
    kind: str = "local"

    def launch(self, spec: WorkerSpec, world_size: int, name: str,
               kill_after_checkpoint: int | None = None) -> LaunchResult:
        log = self.work_dir / f"{name}.log"
        log.unlink(missing_ok=True)
        pid_dir = self.work_dir / f"{name}.pids"
        spec = _with(spec, pid_dir=str(pid_dir))
        extra = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,TUNING",
                 "NCCL_DEBUG_FILE": str(self.work_dir / f"{name}.nccl.%p.log")} if spec.accelerators_per_worker else {}
        argv = torchrun_argv(self.python, world_size, free_port(), f"{self.run_id}-{name}", spec)
        started = time.monotonic()
        proc = localproc.start(self.run_id, argv, name=f"train-{name}", log=log, cwd=REPO_ROOT,
                               environ=worker_environ(os.environ, extra))
        killed = ""
        ck_store = open_store(spec.checkpoint_uri, source="--checkpoint-uri") if kill_after_checkpoint else None
        try:
            while proc.poll() is None:
                if time.monotonic() - started > self.deadline_s:
                    _stop(self.run_id, f"train-{name}")
                    return LaunchResult(name, False, time.monotonic() - started,
                                        f"deadline {self.deadline_s:g}s passed; workers killed. {_tail(log)}",
                                        logs=[str(log)])
                if ck_store is not None and not killed and kill_after_checkpoint is not None:
                    killed = _kill_rank_after(ck_store, kill_after_checkpoint, pid_dir, rank=1)
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:
                _stop(self.run_id, f"train-{name}")
            localproc.forget(self.run_id, f"train-{name}")
        seconds = time.monotonic() - started
        result = read_result(self.store, spec.result_key) if proc.returncode == 0 else None
        ok = proc.returncode == 0 and result is not None
        msg = "" if ok else f"torchrun exited {proc.returncode}: {_tail(log)}"
        return LaunchResult(name, ok, seconds, msg, result, killed, [str(log)])


def _with(spec: WorkerSpec, **changes: object) -> WorkerSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


def _kill_rank_after(ck_store: ObjectStore, step: int, pid_dir: Path, rank: int) -> str:
    """SIGKILL rank's worker once checkpoint `step` is committed; '' while waiting."""
    if step not in checkpoint.list_steps(ck_store):
        return ""
    pid_file = pid_dir / f"rank-{rank}.pid"
    if not pid_file.is_file():
        return ""
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return ""
    return f"SIGKILL to rank {rank} (pid {pid}) after checkpoint step {step} appeared"


def _stop(run_id: str, name: str) -> None:
    for rec in localproc.records(run_id):
        if rec.name == name:
            localproc.stop(rec, grace_s=3.0)


def tf_python_ready(python: str) -> str:
    """'' when `python` can import tensorflow, else the reason it cannot (without importing TF here)."""
    if not Path(python).is_file():
        return f"KAIC_TF_PYTHON {python!r} is not a file"
    probe = "import importlib.util,sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
    try:
        rc = subprocess.run([python, "-c", probe], capture_output=True, timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python}: cannot run ({exc})"
    return "" if rc == 0 else f"tensorflow is not installed for {python} (make tf-env, or set KAIC_TF_PYTHON)"


@dataclass
class LocalTFLauncher:
    """N TensorFlow workers on free local ports, TF_CONFIG built per worker (MultiWorkerMirroredStrategy)."""

    run_id: str
    store: ObjectStore
    work_dir: Path
    deadline_s: float
    python: str = sys.executable
    kind: str = "local"

    def launch(self, spec: WorkerSpec, world_size: int, name: str,
               kill_after_checkpoint: int | None = None) -> LaunchResult:
        ports = [free_port() for _ in range(world_size)]
        started = time.monotonic()
        procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        try:
            for i in range(world_size):
                log = self.work_dir / f"{name}-{i}.log"
                log.unlink(missing_ok=True)
                env = worker_environ(os.environ, {"TF_CONFIG": tf_config(ports, i), "TF_CPP_MIN_LOG_LEVEL": "2",
                                                  "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")
                                                  if spec.accelerators_per_worker else "-1"})
                pname = f"train-{name}-{i}"
                procs.append((pname, localproc.start(self.run_id, [self.python, "-m", "steps.train.tf_worker",
                                                                   *spec.to_argv()],
                                                     name=pname, log=log, cwd=REPO_ROOT, environ=env), log))
            while any(p.poll() is None for _, p, _ in procs):
                if time.monotonic() - started > self.deadline_s:
                    return LaunchResult(name, False, time.monotonic() - started,
                                        f"deadline {self.deadline_s:g}s passed; TF workers killed",
                                        logs=[str(lg) for _, _, lg in procs])
                time.sleep(POLL_S)
        finally:
            for pname, p, _ in procs:
                if p.poll() is None:
                    _stop(self.run_id, pname)
                localproc.forget(self.run_id, pname)
        codes = [p.returncode for _, p, _ in procs]
        result = read_result(self.store, spec.result_key) if not any(codes) else None
        ok = not any(codes) and result is not None
        msg = "" if ok else f"TF workers exited {codes}: {_tail(procs[0][2])}"
        return LaunchResult(name, ok, time.monotonic() - started, msg, result, "", [str(lg) for _, _, lg in procs])
