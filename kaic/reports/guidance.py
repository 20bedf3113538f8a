"""What evidence each CNCF requirement still needs when kaic could not verify it (PRODUCT.yaml notes).

From the probe table in the conformance spec: what kaic reads or runs on a cluster, and what a
vendor must attach (documentation, a test log) where kaic cannot observe it.
"""

from __future__ import annotations

EVIDENCE_NEEDED: dict[str, str] = {
    "dra_support":
        "run kaic against a cluster that serves resource.k8s.io/v1 (DeviceClass, ResourceClaim, "
        "ResourceClaimTemplate, ResourceSlice) with DeviceClasses and ResourceSlices present, "
        "or link the platform's DRA documentation",
    "driver_runtime_management":
        "a cluster whose accelerator nodes advertise driver/runtime versions (node labels or DRA "
        "device attributes), or documentation of how the platform installs and verifies drivers",
    "gpu_sharing":
        "a cluster exposing MIG, time-slicing or DRA partitionable devices, or documentation of "
        "the platform's GPU sharing strategy",
    "virtualized_accelerator":
        "a cluster exposing vGPU products, or documentation of the platform's vGPU support "
        "(N/A needs a justification, e.g. no virtualized accelerators offered)",
    "ai_inference":
        "provision.gateway_routing passing on the cluster (probes.gateway_routing with serving.gateway: an "
        "HTTPRoute's weighted split and header match observed on real requests), or documentation of the "
        "platform's Gateway API implementation doing both",
    "advanced_inference_ingress":
        "a cluster serving the Gateway API Inference Extension (InferencePool), or documentation "
        "of the platform's GAIE implementation",
    "high_performance_networking":
        "a cluster with RDMA/secondary-network resources (rdma/*, NetworkAttachmentDefinitions, "
        "DRANET ResourceSlices), or documentation of the platform's multi-NIC support",
    "disaggregated_inference":
        "a vendor attestation: a link to a run of a disaggregated inference solution (vLLM, "
        "SGLang, llm-d or Dynamo with separate prefill and decode) on the platform",
    "gang_scheduling":
        "a cluster with a gang scheduler (Kueue, Volcano, KAI, YuniKorn) Running and kaic's "
        "active gang admission probe enabled, or a test log showing all-or-nothing admission",
    "cluster_autoscaling":
        "a cluster with an autoscaler for accelerator node groups (cluster-autoscaler, Karpenter, "
        "provider node pools), or a log of an accelerator node group scaling up and down",
    "pod_autoscaling":
        "a cluster serving a custom or external metrics API (e.g. prometheus-adapter over the DCGM "
        "exporter) and kaic's pod autoscaling probe enabled (probes.pod_autoscaling, --suite full), "
        "or a log of an HPA scaling accelerator pods on a custom metric",
    "accelerator_metrics":
        "a cluster with an accelerator metrics exporter (e.g. DCGM exporter) Running, or "
        "documentation of the platform's accelerator metrics endpoint",
    "ai_service_metrics":
        "a cluster with a scraper for workload metrics (Prometheus operator CRDs or another), or "
        "documentation of the platform's monitoring of Prometheus-format metrics",
    "secure_accelerator_access":
        "a cluster with a device plugin or DRA driver and kaic's active isolation probes enabled "
        "(a pod without a request sees no device; two pods see only their own)",
    "workload_sandboxing":
        "a cluster with gVisor or Kata RuntimeClasses, or documentation of the platform's "
        "sandboxed runtime",
    "robust_controller":
        "a cluster with an AI operator (Kubeflow Trainer, KubeRay) whose CRDs, pods and webhooks "
        "kaic can read, or a log of a custom resource being validated and reconciled",
}


def evidence_needed(requirement_id: str) -> str:
    return EVIDENCE_NEEDED.get(requirement_id, "evidence from the platform's documentation or a test log")
