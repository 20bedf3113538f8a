"""Benchmark: kaic's V2 load driver against wrk, side by side, on the same local KServe ModelServer.

    apt-get install -y wrk                # Debian/Ubuntu (brew install wrk on macOS)
    .venv/bin/python bench/bench_serve.py [--concurrency 1,4,16] [--duration-s 5] [--rounds 3] [--workers 1]

Both drivers run closed-loop keep-alive connections (wrk with one thread, kaic's driver is one event
loop), POST the same V2 body (one digits row) for the same duration, alternately, `--rounds` times
per level; the table shows the median round of each. Throughput ratio kaic/wrk >= 0.9 and latency
percentiles within 10% mean kaic's driver is not what limits the measurement. CPU per request
(user+sys of the driver process) shows how much of the machine each driver takes from the server.
Nothing here asserts: it prints figures.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaic import localproc  # noqa: E402
from steps.serve import loadgen, v2  # noqa: E402
from steps.serve.exercise import Endpoint, wait_ready  # noqa: E402
from steps.serve.local import HOST, child_environ, free_port, server_command  # noqa: E402
from steps.serve.parity import read_holdout  # noqa: E402
from steps.serve.tiny_model import write_tiny_model  # noqa: E402

LUA = r"""
local f = assert(io.open(os.getenv("KAIC_WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KAIC-WRK requests=%d duration_us=%d errors=%d p50=%d p95=%d p99=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Figures:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_req: float


def run_kaic(port: int, body: bytes, c: int, duration_s: float) -> Figures:
    req = [loadgen.http_request(HOST, port, v2.infer_path("digits"), body)]
    t0 = time.process_time()
    s = loadgen.drive(HOST, port, req, c, duration_s, warmup_s=0.0)
    cpu = time.process_time() - t0
    return Figures(s.rps, s.p50_ms, s.p95_ms, s.p99_ms, s.errors, cpu / max(s.total_ok, 1) * 1e6)


def run_wrk(wrk: str, port: int, body_file: Path, lua: Path, c: int, duration_s: float) -> Figures:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{c}",
            f"-d{duration_s:g}s",
            "--latency",
            "-s",
            str(lua),
            f"http://{HOST}:{port}{v2.infer_path('digits')}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"KAIC_WRK_BODY": str(body_file), "PATH": "/usr/bin:/bin"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"KAIC-WRK requests=(\d+) duration_us=(\d+) errors=(\d+) p50=(\d+) p95=(\d+) p99=(\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out.stdout}\n{out.stderr}")
    n, dur_us, errors, p50, p95, p99 = (int(x) for x in m.groups())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Figures(n / (dur_us / 1e6), p50 / 1e3, p95 / 1e3, p99 / 1e3, errors, cpu / max(n, 1) * 1e6)


def median(figs: list[Figures]) -> Figures:
    """The round with the median throughput (its latencies belong to the same round)."""
    ranked = sorted(figs, key=lambda f: f.rps)
    return ranked[len(ranked) // 2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--duration-s", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="model server processes")
    a = p.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk", file=sys.stderr)
        return 2
    levels = [int(x) for x in a.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="kaic-bench-serve-") as tmp:
        home, run_id, port = Path(tmp), "bench-serve", free_port()
        model_dir = write_tiny_model(home / "model")
        body = v2.infer_body(read_holdout(str(model_dir / "holdout_predictions.parquet")).features[:1], 64)
        (home / "body.json").write_bytes(body)
        (home / "post.lua").write_text(LUA)
        proc = localproc.start(
            run_id,
            server_command(model_dir, port, a.workers, 1),
            name="model-server",
            port=port,
            log=home / "server.log",
            environ=child_environ(),
            home=home,
        )
        try:
            wait_ready(Endpoint(HOST, port), "digits", 120, lambda: None if proc.poll() is None else "server exited")
            run_kaic(port, body, 4, 1.0)  # warm the server (and the JIT'd model) before measuring
            print(
                f"ModelServer (KServe, {a.workers} worker(s)) on {HOST}:{port}; {a.rounds} alternating rounds "
                f"of {a.duration_s:g}s per level; median round shown\n"
            )
            head = (
                f"{'c':>3} | {'kaic req/s':>10} {'wrk req/s':>10} {'ratio':>6} | "
                f"{'p50 kaic/wrk ms':>16} {'ratio':>6} | {'p95 kaic/wrk ms':>16} {'ratio':>6} | "
                f"{'p99 kaic/wrk ms':>16} {'ratio':>6} | {'CPU us/req kaic/wrk':>19} | errors"
            )
            print(head)
            print("-" * len(head))
            for c in levels:
                ks, ws = [], []
                for _ in range(a.rounds):
                    ks.append(run_kaic(port, body, c, a.duration_s))
                    ws.append(run_wrk(wrk, port, home / "body.json", home / "post.lua", c, a.duration_s))
                k, w = median(ks), median(ws)
                print(
                    f"{c:>3} | {k.rps:>10.0f} {w.rps:>10.0f} {k.rps / w.rps:>6.2f} | "
                    f"{k.p50_ms:>7.2f}/{w.p50_ms:<8.2f} {k.p50_ms / w.p50_ms:>6.2f} | "
                    f"{k.p95_ms:>7.2f}/{w.p95_ms:<8.2f} {k.p95_ms / w.p95_ms:>6.2f} | "
                    f"{k.p99_ms:>7.2f}/{w.p99_ms:<8.2f} {k.p99_ms / w.p99_ms:>6.2f} | "
                    f"{k.cpu_us_per_req:>9.0f}/{w.cpu_us_per_req:<9.0f} | "
                    f"{sum(f.errors for f in ks)}/{sum(f.errors for f in ws)}"
                )
                spread = statistics.pstdev([f.rps for f in ks + ws]) / statistics.mean([f.rps for f in ks + ws])
                if spread > 0.1:
                    print(f"    note: throughput varied {spread:.0%} across rounds at c={c} (a busy machine?)")
        finally:
            localproc.stop_all(run_id, grace_s=10, home=home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
