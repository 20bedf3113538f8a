"""Typed, validated platform profiles (built-in YAML files here, or a user's own file).

A profile says where the workload runs and what counts as good there: accelerator resource
name, node selectors, tolerations, storage, endpoints, which active probes to run, and
per-platform thresholds `{metric, op, value}` validated against the catalog when loaded.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kaic.errors import ConfigError
from kaic.safeload import load_yaml_file

BUILTIN_DIR = Path(__file__).parent
BUILTIN = ("local", "generic", "eks", "gke", "aks", "openshift")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Threshold(_Model):
    metric: str
    op: Literal[">", ">=", "<", "<=", "=="]
    value: float

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        from kaic.catalog import metric_spec

        if metric_spec(v) is None:
            raise ValueError(f"unknown metric {v!r} (not declared by any check in the catalog)")
        return v

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class Toleration(_Model):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Accelerator(_Model):
    resource_name: str = "nvidia.com/gpu"  # extended resource or DRA DeviceClass name
    per_worker: int = Field(0, ge=0)  # 0: CPU only
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()


class Kubernetes(_Model):
    in_cluster: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "kaic"
    service_account: str = "kaic-steps"


class Storage(_Model):
    object_store: str | None = None  # default: file://$KAIC_HOME/objects locally
    results: str | None = None  # default: file://$KAIC_HOME/results locally
    storage_class: str | None = None


class Endpoints(_Model):
    mlflow_uri: str | None = None
    argo_server: str | None = None


class ExporterProbe(_Model):
    """accelerator_metrics: where each accelerator node's metrics exporter is and what it names things.
    The defaults find NVIDIA's dcgm-exporter as the GPU Operator (`app=nvidia-dcgm-exporter`) and its own Helm
    chart (`app.kubernetes.io/name=dcgm-exporter`) deploy it, in any namespace."""

    pod_selectors: tuple[str, ...] = Field(("app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter"),
                                           min_length=1)  # label selectors; a pod matching any of them
    namespace: str | None = None  # None: every namespace
    port: int = Field(9400, ge=1, le=65535)
    path: str = "/metrics"
    utilization_metric: str = "DCGM_FI_DEV_GPU_UTIL"  # per device, %
    memory_metric: str = "DCGM_FI_DEV_FB_USED"  # per device, MiB
    temperature_metric: str | None = "DCGM_FI_DEV_GPU_TEMP"  # reported where the exporter has it
    power_metric: str | None = "DCGM_FI_DEV_POWER_USAGE"
    load_s: float = Field(60, gt=0)  # how long the load runs; dcgm-exporter collects every 30 s by default
    timeout_s: float = Field(300, gt=0)  # until the load pods run, and until they are gone


class HpaMetric(_Model):
    """The metric the pod_autoscaling probe's HPA scales on (served by the platform's metrics adapter)."""

    name: str = Field("DCGM_FI_DEV_GPU_UTIL", min_length=1)  # DCGM exporter's GPU utilization (%), via an adapter
    type: Literal["Pods", "External"] = "Pods"  # Pods: custom.metrics.k8s.io; External: external.metrics.k8s.io
    target: float = Field(50, gt=0)  # AverageValue per pod: above what a loaded pod reports, above an idle one
    selector: dict[str, str] = Field(default_factory=dict)  # External only: the series' labels


class HpaProbe(_Model):
    """pod_autoscaling: a Deployment of accelerator pods under load and an HPA on `metric` (--suite full)."""

    metric: HpaMetric = HpaMetric()
    load_s: float = Field(180, gt=0)  # each pod keeps its accelerator busy this long after it starts, then idles
    max_replicas: int = Field(2, ge=2, le=8)
    scale_down_window_s: int = Field(60, ge=0, le=3600)  # the HPA's scaleDown stabilizationWindowSeconds
    scale_up_timeout_s: float = Field(600, gt=0)  # from the first pod Ready until a second one is
    scale_down_timeout_s: float = Field(600, gt=0)  # from then until the HPA is back at one replica
    condition_grace_s: float = Field(180, gt=0)  # an HPA condition False this long fails (metrics lag at first)


OperatorName = Literal["trainer", "kuberay", "jobset", "lws", "kserve", "kueue", "kaito"]


class Probes(_Model):
    active: bool = False  # create pods to probe accelerators (cluster only)
    operator_webhook: bool = False  # robust_controller: an invalid CR rejected, a valid one reconciled
    # which operators the operator_webhook probe tries, in order, until one passes (None: every one kaic knows,
    # in its order: steps/provision/active_operator.py)
    operators: tuple[OperatorName, ...] | None = Field(None, min_length=1)
    dra_claims: bool = False  # dra_support/secure_accelerator_access through a DRA ResourceClaim
    dra_device_class: str | None = None  # the DeviceClass the DRA probes claim from
    gang_scheduling: bool = False
    # which gang scheduler the probe goes through; auto: the first served of Kueue, Volcano, KAI
    gang_scheduler: Literal["auto", "kueue", "volcano", "kai"] = "auto"
    gang_queue: str | None = None  # Kueue LocalQueue, Volcano queue (default: `default`) or KAI queue name
    gang_observe_s: float = Field(30, gt=0)  # how long an over-sized gang is watched for a Running pod
    output_wait_s: float = Field(30, gt=0)  # how long a probe pod's log may stay unreadable (no container runtime)
    timeout_s: float = Field(300, gt=0)
    # cluster_autoscaling: N+1 whole-node accelerator pods on the N-node pool (runs with --suite full only)
    node_autoscaling: bool = False
    autoscaling_pool: dict[str, str] = Field(default_factory=dict)  # its node labels (default: accelerator's)
    scale_up_timeout_s: float = Field(900, gt=0)  # until the new node is allocatable and every pod runs
    scale_down_timeout_s: float = Field(1800, gt=0)  # until the pool is back to its nodes (autoscalers wait ~10 min)
    # accelerator_metrics: scrape each accelerator node's exporter, then again under a short accelerator load
    exporter_scrape: bool = False
    exporter: ExporterProbe = ExporterProbe()
    # ai_inference: two backends behind an HTTPRoute on serving.gateway (a weighted split and a header match),
    # requests sent through the Gateway from where kaic runs
    gateway_routing: bool = False
    gateway_requests: int = Field(200, ge=20, le=100_000)  # without the header: the split's sample
    gateway_header_requests: int = Field(20, ge=1, le=100_000)  # with it: every one must reach backend B
    # pod_autoscaling: an HPA on a custom metric scales accelerator pods up, then down (--suite full only)
    pod_autoscaling: bool = False
    hpa: HpaProbe = HpaProbe()

    @field_validator("operators")
    @classmethod
    def _distinct(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"names an operator twice: {list(v)}")
        return v


class Training(_Model):
    world_size: int = Field(2, ge=1)
    steps: int = Field(60, ge=1)
    launcher: Literal["auto", "local", "job", "trainjob"] = "auto"
    kueue_queue: str | None = None
    timeout_s: float = Field(1800, gt=0)


class Serving(_Model):
    concurrency: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = Field((1, 4, 16), min_length=1)
    duration_s: float = Field(3, gt=0)
    warmup_s: float = Field(1, ge=0)
    gateway: str | None = None  # Gateway name to attach an HTTPRoute to, where Gateway API is present
    timeout_s: float = Field(600, gt=0)
    # The cluster monitoring's Prometheus HTTP API, to prove it collected the served model's metrics
    # (ai_service_metrics), e.g. http://prometheus-operated.monitoring.svc:9090
    prometheus_url: str | None = None
    metrics_collect_timeout_s: float = Field(120, gt=0)  # a scrape interval or two


class Submission(_Model):
    """PRODUCT.yaml metadata kaic fills where the template has a placeholder (`--platform-version` wins)."""

    platform_name: str | None = None
    platform_version: str | None = None  # the product's version, not Kubernetes'
    vendor_name: str | None = None  # exactly as in the CNCF landscape's member list
    website_url: str | None = None
    repo_url: str | None = None
    documentation_url: str | None = None
    product_logo_url: str | None = None
    description: str | None = None
    contact_email_address: str | None = None
    k8s_conformance_url: str | None = None  # https://github.com/cncf/k8s-conformance/tree/master/v1.xx/product


class Profile(_Model):
    name: str
    description: str = ""
    platform: str  # the label results are grouped by: local, eks, gke...
    cluster: str = ""  # a stable name for this cluster in comparisons
    image: str = "ghcr.io/kaic-dev/kaic:0.1.0"
    kubernetes: Kubernetes = Kubernetes()
    accelerator: Accelerator = Accelerator()
    storage: Storage = Storage()
    endpoints: Endpoints = Endpoints()
    probes: Probes = Probes()
    training: Training = Training()
    serving: Serving = Serving()
    thresholds: tuple[Threshold, ...] = ()
    # conditional CNCF requirement id -> why its context does not apply here (PRODUCT.yaml: N/A + notes)
    not_applicable: dict[str, str] = Field(default_factory=dict)
    submission: Submission = Submission()

    @field_validator("not_applicable")
    @classmethod
    def _conditional_only(cls, v: dict[str, str]) -> dict[str, str]:
        from kaic.catalog.evidence import justification_problem

        for rid, why in v.items():
            problem = justification_problem(rid, why)
            if problem:
                raise ValueError(f"not_applicable.{rid}: {problem}")
        return v

    @property
    def is_local(self) -> bool:
        return self.platform == "local"

    def thresholds_for(self, metric: str) -> list[Threshold]:
        return [t for t in self.thresholds if t.metric == metric]


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def parse_profile(data: Any, source: str) -> Profile:
    if not isinstance(data, dict):
        raise ConfigError(f"profile {source}: expected a mapping, got {type(data).__name__}")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        got = f" (got {err['input']!r})" if not isinstance(err.get("input"), dict) else ""
        raise ConfigError(f"profile {source}: {_where(err['loc']) or '(top)'}: {err['msg']}{got}") from None


def load_profile(name_or_path: str) -> Profile:
    """A built-in name (`local`, `eks`...) or a path to a YAML file."""
    path = BUILTIN_DIR / f"{name_or_path}.yaml" if name_or_path in BUILTIN else Path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"profile {name_or_path!r}: no such built-in profile ({', '.join(BUILTIN)}) or file"
        )
    data = load_yaml_file(path, f"profile {path}")
    return parse_profile(data, str(path))
