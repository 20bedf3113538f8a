"""pod_autoscaling's probe against a real control plane (the dev cluster: kube-apiserver, kube-controller-manager
with its HPA, Deployment and ReplicaSet controllers; kwok GPU nodes).

The dev cluster serves no custom or external metrics API (prometheus-adapter cannot be built here: the module
proxy refuses it), so the probe's real outcome there is a failure naming the missing API, with nothing created.
Past that gate, the real HPA controller itself says why it cannot scale: its ScalingActive condition, which the
probe reports in the controller's words.
"""

from __future__ import annotations

import pytest

from kaic.cluster import ClusterClient, record_calls, run_selector
from kaic.results import Status
from steps.provision.active import PodSettings
from steps.provision.active_hpa import CHECK, HpaPlan, PodAutoscaling
from steps.provision.active_platform import Clock

pytestmark = pytest.mark.e2e

NAMESPACE = "kaic-queue"
GPU_POOL = {"kaic.dev/pool": "gpu"}
NOT_READY = ({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},)


def _settings(run: str) -> PodSettings:
    return PodSettings(NAMESPACE, "busybox:1.36", run, "nvidia.com/gpu", GPU_POOL, NOT_READY, timeout_s=60.0)


def _left(cluster: ClusterClient, run: str) -> list[str]:
    sel = run_selector(run)
    return [f"{plural}/{(o.get('metadata') or {}).get('name')}" for gv, plural in (
        ("autoscaling/v2", "horizontalpodautoscalers"), ("apps/v1", "deployments"), ("apps/v1", "replicasets"),
        ("v1", "pods")) for o in cluster.list(gv, plural, NAMESPACE, sel)]


@pytest.mark.parametrize(("metric_type", "group"), [("Pods", "custom.metrics.k8s.io"),
                                                    ("External", "external.metrics.k8s.io")])
def test_the_probe_fails_naming_the_metrics_api_the_cluster_does_not_serve(
        cluster: ClusterClient, metric_type: str, group: str) -> None:
    run = f"kaic-e2e-hpa-{metric_type.lower()}-0001"
    recorder = record_calls(cluster)
    out = PodAutoscaling(recorder, _settings(run), HpaPlan(metric_type=metric_type)).run()  # type: ignore[arg-type]
    assert out.check_id == CHECK
    assert out.status is Status.FAILED, (out.message, out.evidence)
    assert out.message.startswith(f"{group} is not served (no APIService registers it): an HPA cannot read the "
                                  f"{metric_type} metric DCGM_FI_DEV_GPU_UTIL")
    assert out.metric is None
    assert not [c for c in recorder.calls if c.verb == "create"]  # checked before creating anything
    assert _left(cluster, run) == []


def test_past_the_gate_the_real_hpa_controller_says_it_cannot_get_the_metric(cluster: ClusterClient) -> None:
    """The objects the probe would create, on a cluster without the API: the Deployment's pod runs (kwok), the HPA
    controller reports ScalingActive=False, and the probe fails with its words, then deletes everything."""
    run = "kaic-e2e-hpa-controller-0001"
    plan = HpaPlan(load_s=60, up_timeout_s=90, down_timeout_s=30, condition_grace_s=20)
    probe = PodAutoscaling(cluster, _settings(run), plan, Clock(poll_s=1.0))
    seen = probe.watch()
    out = probe.outcome(seen)
    assert _left(cluster, run) == []
    assert seen.first_ready_s is not None  # the real Deployment controller and kwok: one pod Ready
    assert seen.peak_ready == 1
    assert out.status is Status.FAILED, (out.message, out.evidence)
    assert out.message.startswith("the HPA could not scale: ScalingActive=False FailedGetPodsMetric: ")
    assert "unable to get metric DCGM_FI_DEV_GPU_UTIL" in out.message
    assert "(for 2" in out.message  # held for the 20 s grace, not one transient look
    assert out.metric is None
