"""Is accelerator capacity back to what provision saw?

Provision records `runs/<run-id>/provision/fingerprint.json`. Teardown reads from it the accelerators
that were free then, as a map resource name -> count, from the first of these keys present:
`accelerator_free`, `accelerator_allocatable`, `accelerators` (on this machine: `gpu_count` or a `gpus`
list). On a cluster, free now = sum of nodes' allocatable minus the requests of pods not yet finished,
polled until it is back to at least the recorded figure (deadline); locally, the GPUs NVML (or
`nvidia-smi`) sees now are counted. A CPU-only machine has nothing to reclaim: skipped, with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kaic.cluster import ClusterClient, Obj
from kaic.hardware.resources import is_accelerator, parse_quantity

MAP_KEYS = ("accelerator_free", "accelerator_allocatable", "accelerators")
LOCAL = "local-gpus"


def expected(fp: dict[str, Any]) -> dict[str, float] | None:
    """Accelerators free at provision time, {resource: count}; None when the fingerprint does not say."""
    for key in MAP_KEYS:
        v = fp.get(key)
        if isinstance(v, dict) and v and all(isinstance(n, int | float) for n in v.values()):
            return {str(k): float(n) for k, n in v.items()}
    if isinstance(fp.get("gpu_count"), int):
        return {LOCAL: float(fp["gpu_count"])}
    if isinstance(fp.get("gpus"), list):
        return {LOCAL: float(len(fp["gpus"]))}
    return None


def free_on_cluster(nodes: list[Obj], pods: list[Obj]) -> dict[str, float]:
    """Accelerators allocatable on nodes minus those requested by pods that are not finished."""
    free: dict[str, float] = {}
    for n in nodes:
        for res, q in ((n.get("status") or {}).get("allocatable") or {}).items():
            if is_accelerator(res):
                free[res] = free.get(res, 0.0) + parse_quantity(q)
    for p in pods:
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not (p.get("spec") or {}).get(
            "nodeName"
        ):
            continue
        for c in (p.get("spec") or {}).get("containers") or []:
            r = c.get("resources") or {}
            asked = {**(r.get("limits") or {}), **(r.get("requests") or {})}  # extended: requests == limits
            for res, q in asked.items():
                if res in free:
                    free[res] -= parse_quantity(q)
    return free


def shortfall(want: dict[str, float], have: dict[str, float]) -> dict[str, tuple[float, float]]:
    """{resource: (wanted, have)} where fewer are free now than at provision."""
    return {r: (w, have.get(r, 0.0)) for r, w in want.items() if have.get(r, 0.0) < w}


def wait_cluster(
    client: ClusterClient,
    want: dict[str, float],
    deadline_s: float,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, tuple[float, float]], float]:
    """Poll until every resource is back (or the deadline); (shortfall, seconds waited)."""
    started = clock()
    while True:
        missing = shortfall(want, free_on_cluster(client.list("v1", "nodes"), client.list("v1", "pods")))
        if not missing or clock() - started >= deadline_s:
            return missing, clock() - started
        sleep(poll_s)


def local_gpu_count() -> int:
    from kaic.hardware.host import nvidia_smi_report, nvml_report

    report = nvml_report()
    if report is None:
        report, _ = nvidia_smi_report()
    return len(report.gpus) if report else 0
