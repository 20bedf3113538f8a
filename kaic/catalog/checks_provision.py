"""Checks of the `provision` step: the platform fingerprint and the requirement probes."""

from kaic.catalog.model import CheckSpec, Direction, MetricSpec, Probe
from kaic.results import Level

P = "provision"
R, A, T, MEAS = Probe.READ, Probe.ACTIVE, Probe.ATTEST, Probe.MEASURE

CHECKS: tuple[CheckSpec, ...] = (
    # Fingerprint (kaic's own)
    CheckSpec("provision.fingerprint", P, "Platform fingerprint recorded", R, level=Level.MUST),
    CheckSpec("provision.accelerators", P, "Accelerators discovered (product, count, memory, driver)", R,
              metrics=(MetricSpec("accelerator_count", "devices"), MetricSpec("accelerator_memory_gib", "GiB"))),
    CheckSpec("provision.cpu_memory", P, "CPU and memory of the node", R,
              metrics=(MetricSpec("cpu_count", "cores"), MetricSpec("memory_gib", "GiB"))),
    # READ probes, one per CNCF id
    CheckSpec("provision.dra_apis", P, "resource.k8s.io/v1 kinds served; DeviceClasses and ResourceSlices present",
              R, "dra_support"),
    CheckSpec("provision.driver_versions", P, "Accelerator driver/runtime versions advertised", R,
              "driver_runtime_management"),
    CheckSpec("provision.gpu_sharing", P, "MIG, time-slicing or partitionable devices exposed", R, "gpu_sharing"),
    CheckSpec("provision.vgpu", P, "Virtualized accelerators (vGPU) exposed", R, "virtualized_accelerator"),
    CheckSpec("provision.gateway_api", P, "Gateway API CRDs and an Accepted GatewayClass", R, "ai_inference"),
    CheckSpec("provision.inference_extension", P, "Gateway API Inference Extension (InferencePool) served", R,
              "advanced_inference_ingress"),
    CheckSpec("provision.rdma_networking", P, "RDMA / secondary-network resources present", R,
              "high_performance_networking"),
    CheckSpec("provision.disaggregated_inference", P, "Disaggregated inference (needs a vendor attestation)", T,
              "disaggregated_inference"),
    CheckSpec("provision.gang_scheduler", P, "A gang scheduler (Kueue, Volcano, KAI, YuniKorn) installed and Running",
              R, "gang_scheduling"),
    CheckSpec("provision.cluster_autoscaler", P, "A cluster autoscaler (cluster-autoscaler, Karpenter, node pools)", R,
              "cluster_autoscaling"),
    CheckSpec("provision.metrics_apis", P, "metrics.k8s.io and custom/external metrics APIs served", R,
              "pod_autoscaling"),
    CheckSpec("provision.accelerator_exporter", P, "An accelerator metrics exporter (e.g. DCGM) Running", R,
              "accelerator_metrics"),
    CheckSpec("provision.service_monitoring", P, "A metrics scraper for AI services (Prometheus operator CRDs)", R,
              "ai_service_metrics"),
    CheckSpec("provision.device_plugin", P, "A device plugin or DRA driver mediates accelerator access", R,
              "secure_accelerator_access"),
    CheckSpec("provision.sandbox_runtimes", P, "RuntimeClasses for gVisor or Kata", R, "workload_sandboxing"),
    CheckSpec("provision.ai_operator", P, "An AI operator's CRDs registered, pods Running, webhooks configured", R,
              "robust_controller"),
    # ACTIVE probes (cluster only, enabled by the profile)
    CheckSpec("provision.accelerator_pod", P, "A pod requesting one accelerator reaches Running", A,
              "secure_accelerator_access",
              metrics=(MetricSpec("pod_time_to_running_s", "s", Direction.LOWER),)),
    CheckSpec("provision.no_request_no_device", P, "A pod without an accelerator request sees no device", A,
              "secure_accelerator_access"),
    CheckSpec("provision.device_isolation", P, "Two pods each see only their own accelerator", A,
              "secure_accelerator_access"),
    CheckSpec("provision.gang_admission", P, "A gang is admitted together; an over-sized gang gets none Running", A,
              "gang_scheduling"),
    CheckSpec("provision.claim_isolation", P, "DRA path: a claimed pod sees its device, a second container and an "
              "unclaimed pod see none, two claimed pods see different devices", A, "secure_accelerator_access"),
    CheckSpec("provision.dra_allocation", P, "A ResourceClaim is allocated a device from the driver's ResourceSlices",
              A, "dra_support"),
    CheckSpec("provision.operator_webhook", P, "An AI operator's webhook rejects an invalid custom resource and a "
              "valid one is reconciled", A, "robust_controller"),
    CheckSpec("provision.driver_match", P, "A pod's driver version (NVML) equals the advertised one", A,
              "driver_runtime_management"),
    CheckSpec("provision.node_autoscaling", P, "N+1 accelerator pods on an N-node pool: the pool grows, the pod runs, "
              "the pool shrinks back (--suite full)", A, "cluster_autoscaling",
              metrics=(MetricSpec("node_time_to_allocatable_s", "s", Direction.LOWER),)),
    CheckSpec("provision.gateway_routing", P, "An HTTPRoute with a weighted split and a header match routes real "
              "requests as declared", A, "ai_inference",
              metrics=(MetricSpec("gateway_split_b_fraction", "ratio"),)),
    CheckSpec("provision.hpa_custom_metric", P, "An HPA on a custom metric scales accelerator pods up, then down "
              "(--suite full)", A, "pod_autoscaling",
              metrics=(MetricSpec("hpa_time_to_scale_up_s", "s", Direction.LOWER),)),
    CheckSpec("provision.exporter_scrape", P, "Each accelerator node's exporter reports per-device utilization and "
              "memory, and they move under load", A, "accelerator_metrics",
              metrics=(MetricSpec("exporter_peak_utilization_pct", "%", Direction.NONE),)),
)
