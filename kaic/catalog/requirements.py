"""The 16 CNCF AI Conformance requirement ids, with category and level per Kubernetes version.

Facts from the official checklist templates (1.33-1.37); tests compare this table with the
templates in ../shared/reference/cncf-ai-conformance/templates/. A template is still the
authority for descriptions: PRODUCT.yaml drafts copy them from the template itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaic.errors import ConfigError
from kaic.results import Level

K8S_VERSIONS: tuple[str, ...] = ("1.33", "1.34", "1.35", "1.36", "1.37")
DEFAULT_K8S_VERSION = "1.35"

M, S = Level.MUST, Level.SHOULD


@dataclass(frozen=True)
class Requirement:
    id: str
    category: str  # the template's key under `spec`
    title: str
    levels: dict[str, Level]  # k8s version -> level; absent where the version does not list the id

    def level(self, k8s_version: str) -> Level | None:
        return self.levels.get(k8s_version)


def _lv(*levels: Level | None) -> dict[str, Level]:
    return {v: lv for v, lv in zip(K8S_VERSIONS, levels, strict=True) if lv is not None}


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("dra_support", "accelerators", "Dynamic Resource Allocation APIs", _lv(S, M, M, None, None)),
    Requirement("driver_runtime_management", "accelerators", "Verifiable accelerator driver and runtime",
                _lv(None, None, S, S, S)),
    Requirement("gpu_sharing", "accelerators", "Static GPU sharing (MIG, time-slicing)", _lv(None, None, S, S, S)),
    Requirement("virtualized_accelerator", "accelerators", "Virtualized accelerators (vGPU)",
                _lv(None, None, S, S, S)),
    Requirement("ai_inference", "networking", "Gateway API for inference traffic", _lv(M, M, M, M, M)),
    Requirement("advanced_inference_ingress", "networking", "Inference-aware ingress (InferencePool)",
                _lv(None, None, None, S, S)),
    Requirement("high_performance_networking", "networking", "High-performance (RDMA) networking",
                _lv(None, None, None, S, S)),
    Requirement("disaggregated_inference", "networking", "Disaggregated inference", _lv(None, None, None, S, S)),
    Requirement("gang_scheduling", "schedulingOrchestration", "All-or-nothing gang scheduling", _lv(M, M, M, M, M)),
    Requirement("cluster_autoscaling", "schedulingOrchestration", "Accelerator node-group autoscaling",
                _lv(M, M, M, M, M)),
    Requirement("pod_autoscaling", "schedulingOrchestration", "Pod autoscaling on custom metrics",
                _lv(M, M, M, M, M)),
    Requirement("accelerator_metrics", "observability", "Accelerator metrics exposed", _lv(M, M, M, M, M)),
    Requirement("ai_service_metrics", "observability", "AI service metrics collected", _lv(M, M, M, M, M)),
    Requirement("secure_accelerator_access", "security", "Isolated accelerator access", _lv(M, M, M, M, M)),
    Requirement("workload_sandboxing", "security", "Sandboxed workloads (gVisor, Kata)",
                _lv(None, None, None, None, S)),
    Requirement("robust_controller", "operator", "A robust AI operator", _lv(M, M, M, M, M)),
)

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}


def check_k8s_version(version: str, source: str = "--k8s-version") -> str:
    """Normalize 'v1.35', '1.35' or '1.35.2' to '1.35'; a version kaic has no template for is bad input."""
    v = version.strip().lstrip("v")
    short = ".".join(v.split(".")[:2])
    if short not in K8S_VERSIONS:
        raise ConfigError(f"{source}: unknown Kubernetes version {version!r} (known: {', '.join(K8S_VERSIONS)})")
    return short


def for_version(k8s_version: str) -> list[tuple[Requirement, Level]]:
    """The requirements a version lists, in template order, with their level there."""
    out = []
    for r in REQUIREMENTS:
        lv = r.level(k8s_version)
        if lv is not None:
            out.append((r, lv))
    return out
