"""Is accelerator capacity back to what provision saw?

Provision records `runs/<run-id>/provision/fingerprint.json`, whose `allocatable` maps each accelerator
resource name to the total the nodes advertised then (empty on a machine without accelerators). On a
cluster, free for this run = the nodes' allocatable minus what this run's own pods (labelled with its run id,
scheduled, not finished) still hold, polled until every resource is back to at least the recorded figure
(deadline): a pod that will not let go, a device the plugin stopped advertising, or a node that left with its
GPUs shows here. Other tenants' pods do not count (they use allocatable, they do not remove it). Locally, the
GPUs NVML (or `nvidia-smi`) sees now are counted. A CPU-only machine has nothing to reclaim: skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kaic.cluster import ClusterClient, Obj, run_selector
from kaic.hardware.resources import is_accelerator, parse_quantity

LOCAL = "local-gpus"


def expected(fp: dict[str, Any]) -> dict[str, float] | None:
    """Accelerators allocatable at provision time, {resource: count}; None when the fingerprint does not say."""
    v = fp.get("allocatable")
    if isinstance(v, dict) and all(isinstance(n, int | float) for n in v.values()):
        return {str(k): float(n) for k, n in v.items()}
    return None


def free_on_cluster(nodes: list[Obj], run_pods: list[Obj]) -> dict[str, float]:
    """Accelerators allocatable on the nodes minus those this run's unfinished, scheduled pods request."""
    free: dict[str, float] = {}
    for n in nodes:
        for res, q in ((n.get("status") or {}).get("allocatable") or {}).items():
            if is_accelerator(res):
                free[res] = free.get(res, 0.0) + parse_quantity(q)
    for p in run_pods:
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
    run_id: str,
    want: dict[str, float],
    deadline_s: float,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, tuple[float, float]], float]:
    """Poll until every resource is back (or the deadline); (shortfall, seconds waited)."""
    started = clock()
    while True:
        pods = client.list("v1", "pods", label_selector=run_selector(run_id))
        missing = shortfall(want, free_on_cluster(client.list("v1", "nodes"), pods))
        if not missing or clock() - started >= deadline_s:
            return missing, clock() - started
        sleep(poll_s)


def local_gpu_count() -> int:
    from kaic.hardware.host import nvidia_smi_report, nvml_report

    report = nvml_report()
    if report is None:
        report, _ = nvidia_smi_report()
    return len(report.gpus) if report else 0
