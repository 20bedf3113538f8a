"""What one process launch costs with each way of making it die with its starter, against a bare Popen.

Each variant starts the same command in its own session, waits for it, and is timed side by side with the
others (interleaved, so drift hits all alike), in a process that has the executor imported (the size of
the process that forks matters):

- bare: ``Popen(start_new_session=True)``, what CPython starts with vfork;
- kaic launch: ``kaic.localproc.launch`` (owner mark in the environment, this process's guard);
- preexec prctl: the parent-death signal set in a ``preexec_fn`` (CPython then forks and runs Python in
  the child), as kaic launched before;
- setpriv: ``setpriv --pdeathsig KILL -- cmd`` (vfork kept, one more exec), where util-linux has it;
- + record: bare plus the per-node JSON record kaic wrote before (psutil create time, write, rename, unlink).

Run: ``.venv/bin/python bench/bench_launch.py [--reps N]``.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

import kaic.executor  # noqa: F401  (the executor's imports: a process of its size)
from kaic import localproc

Launch = Callable[[list[str]], None]


def bare(argv: list[str]) -> None:
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True).wait()


def make_kaic(home: Path) -> Launch:
    def run(argv: list[str]) -> None:
        localproc.launch(argv, home=home, env=None, cwd=None, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).wait()

    return run


def make_preexec() -> Launch:
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl

    def run(argv: list[str]) -> None:
        parent = os.getpid()

        def preexec() -> None:
            prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(137)

        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, preexec_fn=preexec).wait()

    return run


def make_setpriv(path: str) -> Launch:
    def run(argv: list[str]) -> None:
        bare([path, "--pdeathsig", "KILL", "--", *argv])

    return run


def make_record(node_dir: Path) -> Launch:
    def run(argv: list[str]) -> None:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        record = {"name": "node", "pid": proc.pid, "pgid": proc.pid, "cmd": argv, "port": None,
                  "started": time.time(), "create_time": psutil.Process(proc.pid).create_time(),
                  "owner_pid": os.getpid(), "owner_create_time": 0.0}
        path, tmp = node_dir / "proc.json", node_dir / ".proc.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)
        proc.wait()
        path.unlink()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, Launch] = {"bare": bare, "kaic launch": make_kaic(Path(tmp))}
        if sys.platform == "linux":
            variants["preexec prctl"] = make_preexec()
        if (setpriv := shutil.which("setpriv")) is not None:
            variants["setpriv"] = make_setpriv(setpriv)
        variants["bare + record"] = make_record(Path(tmp))
        commands = [("/bin/true", ["/bin/true"]), ("python -c pass", [sys.executable, "-c", "pass"])]
        print(f"launch + wait, medians of {args.reps} interleaved repetitions, load {os.getloadavg()[0]:.1f}")
        print(f"{'command':<16} {'variant':<15} {'ms':>8} {'vs bare':>8} {'+ms':>7}")
        for label, argv in commands:
            for run in variants.values():
                run(argv)  # warm-up (the guard starts here)
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.reps):
                for name, run in variants.items():
                    start = time.perf_counter()
                    run(argv)
                    times[name].append(time.perf_counter() - start)
            base = statistics.median(times["bare"])
            for name, ts in times.items():
                m = statistics.median(ts)
                print(f"{label:<16} {name:<15} {m * 1000:8.2f} {m / base:8.2f} {(m - base) * 1000:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
