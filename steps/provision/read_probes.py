"""The READ probes, one per CNCF requirement id, in one literal table (catalog check id -> probe)."""

from __future__ import annotations

from collections.abc import Callable

from kaic.hardware.nodes import NodeInfo
from kaic.results import Outcome
from steps.provision import read_accelerators as acc
from steps.provision import read_platform as plat
from steps.provision.view import ClusterView

Probe = Callable[[ClusterView, list[NodeInfo]], Outcome]

READ_PROBES: dict[str, Probe] = {
    "provision.dra_apis": lambda v, n: acc.dra_support(v),
    "provision.driver_versions": acc.driver_versions,
    "provision.gpu_sharing": acc.gpu_sharing,
    "provision.vgpu": acc.vgpu,
    "provision.gateway_api": lambda v, n: plat.gateway_api(v),
    "provision.inference_extension": lambda v, n: plat.inference_extension(v),
    "provision.rdma_networking": plat.rdma_networking,
    "provision.disaggregated_inference": lambda v, n: plat.disaggregated_inference(v),
    "provision.gang_scheduler": lambda v, n: plat.gang_scheduler(v),
    "provision.cluster_autoscaler": plat.cluster_autoscaler,
    "provision.metrics_apis": lambda v, n: plat.metrics_apis(v),
    "provision.accelerator_exporter": acc.accelerator_exporter,
    "provision.service_monitoring": lambda v, n: plat.service_monitoring(v),
    "provision.device_plugin": acc.device_plugin,
    "provision.sandbox_runtimes": lambda v, n: plat.sandbox_runtimes(v),
    "provision.ai_operator": lambda v, n: plat.ai_operator(v),
}


def evaluate(view: ClusterView) -> list[Outcome]:
    """Every READ probe over one view; a probe that crashes is an error row, the others still run."""
    nodes = view.nodes()
    out = []
    for check_id, probe in READ_PROBES.items():
        try:
            out.append(probe(view, nodes))
        except Exception as exc:  # one broken probe must not hide the other fifteen
            out.append(_error(check_id, exc))
    return out


def _error(check_id: str, exc: Exception) -> Outcome:
    from kaic.results import Status

    return Outcome(check_id, Status.ERROR, f"probe crashed: {type(exc).__name__}: {exc}")
