"""The local executor's overhead against a bare subprocess loop running the same commands.

Two shapes, each of minimal steps (``python3 -c pass``, which the executor runs with the current
interpreter, so the bare loop does too):

- chain: 20 DAG tasks, each depending on the one before, against a sequential ``subprocess.run`` loop;
- fan-out: 20 parallel steps (``withSequence``), against a thread pool of the same parallelism.

Both run side by side, several repetitions, and the table shows medians and the ratio.
Run: ``.venv/bin/python bench/bench_executor.py [--reps N] [--width N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kaic.executor import ExecutorOptions, run_workflow
from kaic.executor.runner import default_parallelism

STEP = {"name": "step", "container": {"image": "python", "command": ["python3", "-c", "pass"]}}
BARE = [sys.executable, "-c", "pass"]


def chain(n: int) -> dict[str, Any]:
    tasks = [
        {"name": f"t{i}", "template": "step", **({"depends": f"t{i - 1}"} if i else {})} for i in range(n)
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-chain-"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "dag": {"tasks": tasks}}, STEP]},
    }


def fan_out(n: int) -> dict[str, Any]:
    steps = [[{"name": "s", "template": "step", "withSequence": {"count": str(n)}}]]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-fan-"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "steps": steps}, STEP]},
    }


def bare_step(_: int = 0) -> None:
    # The same launch as the executor's (own session); without it, parallel spawns here are
    # several times slower on Linux, which would flatter the executor.
    subprocess.run(
        BARE, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def run_bare(n: int, parallel: int) -> None:
    if parallel == 1:
        for _ in range(n):
            bare_step()
        return
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(bare_step, range(n)))


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--width", type=int, default=20)
    args = parser.parse_args()
    parallel = default_parallelism()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        options = ExecutorOptions(kaic_home=Path(home), max_parallel=parallel, handle_signals=False)
        shapes = [
            ("chain", chain(args.width), 1),
            (f"fan-out (pool {parallel})", fan_out(args.width), parallel),
        ]
        for label, manifest, bare_parallel in shapes:
            run_workflow(manifest, {}, options)  # warm-up: imports, page cache
            executor, bare = [], []
            for _ in range(args.reps):  # interleaved, so drift hits both sides alike
                bare.append(timed(lambda p=bare_parallel: run_bare(args.width, p)))
                phases: list[str] = []
                executor.append(
                    timed(lambda m=manifest, out=phases: out.append(run_workflow(m, {}, options).phase))
                )
                assert phases == ["Succeeded"], phases
            rows.append((label, statistics.median(bare), statistics.median(executor)))
    print(f"{args.width} minimal steps ({' '.join(BARE)}), {args.reps} repetitions, medians")
    print(f"{'shape':<22} {'bare loop s':>12} {'executor s':>12} {'ratio':>7} {'overhead/step ms':>17}")
    for label, b, e in rows:
        print(f"{label:<22} {b:12.3f} {e:12.3f} {e / b:7.2f} {(e - b) / args.width * 1000:17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
