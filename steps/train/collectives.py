"""All-reduce correctness and the bus-bandwidth sweep (nccl-tests definitions).

algbw = bytes / time; busbw = algbw * 2(n-1)/n for all-reduce, so that busbw is comparable with the
link speed whatever the number of ranks. Time per size is the mean over `iters` timed iterations
(after warm-up), taken as the maximum over ranks, as the slowest rank bounds a collective.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GB = 1e9


def bus_factor(world_size: int) -> float:
    return 2.0 * (world_size - 1) / world_size if world_size > 1 else 0.0


def size_label(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


@dataclass(frozen=True)
class BandwidthPoint:
    nbytes: int
    time_s: float  # per all-reduce
    algbw_gbps: float
    busbw_gbps: float

    @staticmethod
    def of(nbytes: int, time_s: float, world_size: int) -> BandwidthPoint:
        algbw = nbytes / time_s / GB
        return BandwidthPoint(nbytes, time_s, algbw, algbw * bus_factor(world_size))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_allreduce(device: Any) -> tuple[bool, str]:
    """Each rank r contributes (r+1) * [1, 2, ..., 1024]; the sum must be n(n+1)/2 times that, exactly."""
    import torch
    import torch.distributed as dist

    n, r = dist.get_world_size(), dist.get_rank()
    base = torch.arange(1, 1025, dtype=torch.float64, device=device)
    t = base * (r + 1)
    dist.all_reduce(t)
    expected = base * (n * (n + 1) / 2)
    ok_sum = bool(torch.equal(t, expected))
    m = torch.tensor([float(r)], device=device)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    ok_max = float(m.item()) == float(n - 1)
    both = torch.tensor([1.0 if ok_sum and ok_max else 0.0], device=device)
    dist.all_reduce(both, op=dist.ReduceOp.MIN)  # every rank must agree
    ok = float(both.item()) == 1.0
    return ok, (f"SUM of (rank+1)*[1..1024] over {n} ranks = {n * (n + 1) // 2}*[1..1024] exactly; MAX of ranks = "
                f"{n - 1}" if ok else f"mismatch on some rank (sum ok here: {ok_sum}, max ok here: {ok_max})")


def time_allreduce(nbytes: int, iters: int, device: Any, warmup: int = 3) -> float:
    """Mean seconds per all-reduce of a float32 buffer of `nbytes`, max over ranks."""
    import torch
    import torch.distributed as dist

    buf = torch.ones(max(nbytes // 4, 1), dtype=torch.float32, device=device)
    for _ in range(warmup):
        dist.all_reduce(buf)
    _sync(device)
    dist.barrier()
    started = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(buf)
    _sync(device)
    elapsed = torch.tensor([(time.perf_counter() - started) / iters], dtype=torch.float64, device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return float(elapsed.item())


def sweep(sizes: list[int], iters: int, device: Any) -> list[BandwidthPoint]:
    import torch.distributed as dist

    n = dist.get_world_size()
    return [BandwidthPoint.of(s, time_allreduce(s, iters, device), n) for s in sizes]


_NCCL_TUNING = re.compile(r"\b(?:algo(?:rithm)?)\s*[:=]?\s*(Tree|Ring|CollNet\w*|NVLS\w*|PAT)\b.*?"
                          r"\bproto(?:col)?\s*[:=]?\s*(LL128|LL|Simple)\b", re.IGNORECASE)


def nccl_algo_proto(environ: dict[str, str], debug_log: Path | None) -> tuple[str, str]:
    """NCCL's algorithm and protocol: forced by NCCL_ALGO/NCCL_PROTO, else parsed from NCCL's debug log,
    else 'unknown'."""
    algo, proto = environ.get("NCCL_ALGO", ""), environ.get("NCCL_PROTO", "")
    if (not algo or not proto) and debug_log is not None and debug_log.is_file():
        m = _NCCL_TUNING.search(debug_log.read_text(errors="replace"))
        if m:
            algo, proto = algo or m.group(1), proto or m.group(2)
    return algo or "unknown", proto or "unknown"


def nccl_debug_env(log_dir: Path) -> dict[str, str]:
    """Ask NCCL to log its tuning choices to a per-process file (unless the user set NCCL_DEBUG)."""
    if os.environ.get("NCCL_DEBUG"):
        return {}
    return {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,TUNING",
            "NCCL_DEBUG_FILE": str(log_dir / "nccl.%h.%p.log")}
