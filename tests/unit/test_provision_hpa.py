"""pod_autoscaling's probe, pure parts: the objects it creates (validated as Kubernetes objects), the metrics API
gate, and the verdict over recorded HPA + Deployment observations; its wiring into the provision step and the
accelerator load its pods run (the driver runs on the dev cluster: tests/e2e/test_provision_hpa_devcluster.py)."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import kubernetes_validate
import pytest

import steps.provision as provision
from kaic.cluster import RUN_ID_LABEL, ApiResource, ClusterError, record_calls
from kaic.cluster.fake import FakeCluster
from kaic.errors import ConfigError
from kaic.hardware import burn
from kaic.profiles import load_profile, parse_profile
from kaic.results import RunContext, Status
from kaic.stepkit import StepContext
from kaic.stores.objects import open_store
from steps.provision.active import PROBE_LABEL, PodSettings
from steps.provision.active_hpa import (
    CHECK,
    METRIC,
    HpaPlan,
    HpaSeen,
    PodAutoscaling,
    Sample,
    finished,
    hpa_object,
    judge_hpa,
    load_deployment,
    missing_api,
    sample,
    summarize,
)
from steps.provision.active_platform import Clock
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

RUN = "kaic-conformance-x7k2p"
SETTINGS = PodSettings("kaic", "ghcr.io/kaic-dev/kaic-cuda:0.1.0", RUN, "nvidia.com/gpu", {"pool": "gpu"},
                       ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},), timeout_s=300)
PLAN = HpaPlan()
# The status the real HPA controller (kube-controller-manager v1.36.3, the dev cluster) wrote on the probe's HPA
# where no custom metrics API is served, recorded 2026-12-07.
NO_API = ("the HPA was unable to compute the replica count: unable to get metric DCGM_FI_DEV_GPU_UTIL: unable to "
          "fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered")
HPA_NO_API = {"status": {"currentReplicas": 1, "desiredReplicas": 0, "currentMetrics": [{"type": ""}], "conditions": [
    {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-12-07T08:22:26Z",
     "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"},
    {"type": "ScalingActive", "status": "False", "lastTransitionTime": "2026-12-07T08:22:26Z",
     "reason": "FailedGetPodsMetric", "message": NO_API}]}}
DEPLOYMENT_1 = {"spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                                                    "readyReplicas": 1, "availableReplicas": 1}}


# -- objects -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plan", [PLAN, HpaPlan(metric="gpu_busy", metric_type="External", target=0.5,
                                                selector={"namespace": "kaic"}, max_replicas=3)])
def test_the_objects_are_valid_kubernetes_objects(plan: HpaPlan) -> None:
    for obj in (load_deployment("kaic-x7k2p-hpa", SETTINGS, plan), hpa_object("kaic-x7k2p-hpa", SETTINGS, plan)):
        kubernetes_validate.validate(obj, "1.35", strict=True)
        assert obj["metadata"]["labels"] == {PROBE_LABEL: "hpa", RUN_ID_LABEL: RUN}


def test_the_deployment_runs_one_loaded_accelerator_pod_its_selector_picks() -> None:
    d = load_deployment("kaic-x7k2p-hpa", SETTINGS, HpaPlan(load_s=240))
    template = d["spec"]["template"]
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["selector"]["matchLabels"] == {PROBE_LABEL: "hpa", RUN_ID_LABEL: RUN}
    assert template["metadata"]["labels"] == d["spec"]["selector"]["matchLabels"]
    (c,) = template["spec"]["containers"]
    assert c["command"] == ["python", "-m", "kaic.hardware.burn", "--seconds", "240"]
    assert c["image"] == SETTINGS.image
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert template["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert template["spec"]["tolerations"] == [dict(SETTINGS.tolerations[0])]
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_hpa_targets_the_deployment_on_the_plans_metric() -> None:
    spec = hpa_object("kaic-x7k2p-hpa", SETTINGS, HpaPlan(target=50, scale_down_window_s=30))["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kaic-x7k2p-hpa"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 2)
    assert spec["metrics"] == [{"type": "Pods", "pods": {"metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                                                         "target": {"type": "AverageValue", "averageValue": "50"}}}]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    ext = hpa_object("h", SETTINGS, HpaPlan(metric="q", metric_type="External", target=0.5,
                                            selector={"a": "b"}))["spec"]["metrics"]
    assert ext == [{"type": "External", "external": {"metric": {"name": "q", "selector": {"matchLabels": {"a": "b"}}},
                                                     "target": {"type": "AverageValue", "averageValue": "0.5"}}}]


# -- the metrics API gate ----------------------------------------------------------------------------------
def _apiservice(group: str, available: str, reason: str = "", message: str = "") -> dict:
    return {"metadata": {"name": f"v1beta1.{group}"}, "spec": {"group": group, "version": "v1beta1"},
            "status": {"conditions": [{"type": "Available", "status": available, "reason": reason,
                                       "message": message}]}}


def test_the_metrics_api_must_be_served_and_available() -> None:
    custom = "custom.metrics.k8s.io"
    assert missing_api(["apps", custom], [], PLAN) is None
    assert missing_api(["apps"], [_apiservice(custom, "True")], PLAN) is None  # an adapter listing no metric yet
    assert missing_api(["apps"], [], PLAN) == (
        "custom.metrics.k8s.io is not served (no APIService registers it): an HPA cannot read the Pods metric "
        "DCGM_FI_DEV_GPU_UTIL; the platform needs a metrics adapter serving it (e.g. prometheus-adapter)")
    down = _apiservice(custom, "False", "FailedDiscoveryCheck", "failing or missing response from https://10.0.0.9")
    assert missing_api(["apps", custom], [down], PLAN) == (
        "custom.metrics.k8s.io is registered (APIService v1beta1.custom.metrics.k8s.io) but not Available: "
        "FailedDiscoveryCheck: failing or missing response from https://10.0.0.9")
    external = HpaPlan(metric_type="External")
    assert missing_api(["apps", custom], [_apiservice(custom, "True")], external) is not None
    assert missing_api(["external.metrics.k8s.io"], [], external) is None


def test_without_the_api_the_probe_fails_and_creates_nothing() -> None:
    node = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    cluster = record_calls(FakeCluster([node]))
    out = PodAutoscaling(cluster, SETTINGS, PLAN).run()
    assert (out.check_id, out.status, out.metric) == (CHECK, Status.FAILED, None)
    assert out.message.startswith("custom.metrics.k8s.io is not served")
    assert {c.verb for c in cluster.calls} <= {"get", "list"}


class _Served(FakeCluster):
    """FakeCluster serving a custom metrics API (no HPA controller: nothing ever scales); `fail_get` breaks the
    HPA's reads, as an API server going away would."""

    def __init__(self, fail_get: bool = False) -> None:
        super().__init__([], start_after_reads=1)
        self.fail_get = fail_get

    def api_resources(self) -> list[ApiResource]:
        return [*super().api_resources(), ApiResource("custom.metrics.k8s.io", "v1beta2", "MetricValueList",
                                                      "pods/DCGM_FI_DEV_GPU_UTIL", True)]

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        if self.fail_get and plural == "horizontalpodautoscalers":
            raise ClusterError("connection refused")
        return super().get(group_version, plural, name, namespace)


def _clock() -> Clock:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    return Clock(1.0, lambda: t[0], sleep)


@pytest.mark.parametrize("fail_get", [False, True])
def test_the_probe_deletes_what_it_created_whatever_happens(fail_get: bool) -> None:
    cluster = _Served(fail_get)
    probe = PodAutoscaling(cluster, replace(SETTINGS, timeout_s=30), PLAN, _clock())
    if fail_get:
        with pytest.raises(ClusterError, match="connection refused"):
            probe.run()
    else:
        out = probe.run()
        assert (out.status, out.message) == (Status.FAILED, "the Deployment's first pod was not Ready within 30s")
    assert [o["kind"] for o in cluster.created] == ["Deployment", "HorizontalPodAutoscaler"]
    assert [k for k in cluster.objects if k[1] in ("deployments", "horizontalpodautoscalers")] == []


# -- observations and the verdict ---------------------------------------------------------------------------
def _hpa(desired: int, current: str = "", blocked: str = "") -> dict:
    conditions = [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                  {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]
    if blocked:
        conditions[1] = {"type": "ScalingActive", "status": "False", "reason": "FailedGetPodsMetric",
                         "message": blocked}
    metrics = [{"type": "Pods", "pods": {"metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                                         "current": {"averageValue": current}}}] if current else []
    return {"status": {"currentReplicas": 1, "desiredReplicas": desired, "currentMetrics": metrics,
                       "conditions": conditions}}


def _dep(replicas: int, ready: int) -> dict:
    return {"spec": {"replicas": replicas}, "status": {"replicas": replicas, "readyReplicas": ready}}


def test_a_sample_reads_the_controllers_own_words() -> None:
    s = sample(HPA_NO_API, DEPLOYMENT_1)
    assert s == Sample(0, 1, 1, f"ScalingActive=False FailedGetPodsMetric: {NO_API}")
    assert sample(_hpa(2, "97"), _dep(2, 1)) == Sample(2, 2, 1, "", "97")
    unable = {"status": {"conditions": [{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
                                         "message": "deployments/scale.apps \"x\" not found"}]}}
    assert sample(unable, None).blocked == 'AbleToScale=False FailedGetScale: deployments/scale.apps "x" not found'
    pending = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}}
    said = "burn: device cuda is not available (torch sees no CUDA device)\n"
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=load"}
    crashing = {"status": {"phase": "Running", "containerStatuses": [
        {"state": {"waiting": waiting}, "lastState": {"terminated": {"exitCode": 1, "message": said}}}]}}
    assert sample(None, None, [pending]).pending == "Unschedulable: 0/3 nodes are available: 3 Insufficient " \
                                                    "nvidia.com/gpu."
    assert sample(None, None, [crashing]).pending == (
        "CrashLoopBackOff: back-off 40s restarting failed container=load (it last exited with: burn: device cuda is "
        "not available (torch sees no CUDA device))")


# A recorded run as a platform with DCGM + prometheus-adapter shows it: the first pod Ready at 20 s (load on),
# the adapter's first value after a scrape or two, the HPA at 2, the second pod Ready, load over, back to 1.
GROWS_AND_SHRINKS = [
    (0.0, (None, _dep(1, 0))), (20.0, (_hpa(0, blocked="no metrics returned"), _dep(1, 1))),
    (60.0, (_hpa(1, "0"), _dep(1, 1))), (95.0, (_hpa(2, "98"), _dep(2, 1))), (130.0, (_hpa(2, "99"), _dep(2, 2))),
    (260.0, (_hpa(2, "49"), _dep(2, 2))), (330.0, (_hpa(1, "0"), _dep(2, 2))), (400.0, (_hpa(1, "0"), _dep(1, 1))),
]


def _timeline(rows: list) -> list[tuple[float, Sample]]:
    return [(t, sample(h, d)) for t, (h, d) in rows]


def test_grown_then_shrunk_back_passes_and_times_the_scale_up() -> None:
    seen = summarize(_timeline(GROWS_AND_SHRINKS))
    assert (seen.first_ready_s, seen.grown_s, seen.shrunk_s, seen.up_s) == (20.0, 130.0, 400.0, 110.0)
    assert finished(seen, PLAN, 300)
    status, message = judge_hpa(seen, PLAN, 300)
    assert status is Status.PASSED
    assert message == ("the HPA on the Pods metric DCGM_FI_DEV_GPU_UTIL, target average 50 scaled the Deployment "
                       "from 1 to 2 Ready replicas 110.0s after the load began, and back to 1 replica 270.0s later "
                       "once it idled")
    for cut in range(1, len(GROWS_AND_SHRINKS)):  # before the end the watch goes on: nothing is decided early
        assert not finished(summarize(_timeline(GROWS_AND_SHRINKS[:cut])), PLAN, 300)


def test_the_outcome_records_the_scale_up_time() -> None:
    probe = PodAutoscaling(FakeCluster([]), SETTINGS, PLAN)
    out = probe.outcome(summarize(_timeline(GROWS_AND_SHRINKS)))
    assert (out.status, out.metric, out.value, out.unit) == (Status.PASSED, METRIC, 110.0, "s")
    assert "HPA 1..2 on the Pods metric DCGM_FI_DEV_GPU_UTIL" in (out.evidence or "")


def test_a_condition_false_past_the_grace_fails_with_the_controllers_message() -> None:
    plan = HpaPlan(condition_grace_s=60)
    rows = [(0.0, (None, _dep(1, 0))), *[(t, (HPA_NO_API, DEPLOYMENT_1)) for t in (15.0, 45.0, 74.0)]]
    assert not finished(summarize(_timeline(rows)), plan, 300)  # False for 59 s: metrics may still be coming
    rows.append((75.0, (HPA_NO_API, DEPLOYMENT_1)))
    seen = summarize(_timeline(rows))
    assert finished(seen, plan, 300)
    assert judge_hpa(seen, plan, 300) == (
        Status.FAILED, f"the HPA could not scale: ScalingActive=False FailedGetPodsMetric: {NO_API} (for 60s, with 1 "
        "pod Ready)")


def test_a_condition_that_clears_restarts_the_grace() -> None:
    rows = [(0.0, (HPA_NO_API, DEPLOYMENT_1)), (50.0, (_hpa(1, "3"), _dep(1, 1))), (70.0, (HPA_NO_API, DEPLOYMENT_1)),
            (100.0, (HPA_NO_API, DEPLOYMENT_1))]
    seen = summarize(_timeline(rows))
    assert (seen.blocked_for, seen.last_current) == (30.0, "3")
    assert not finished(seen, HpaPlan(condition_grace_s=60), 300)


def test_a_condition_before_the_first_pod_is_ready_does_not_count() -> None:
    """A slow image pull: no pod, so no metric; the HPA says so, and that is not its failure."""
    rows = [(0.0, (None, _dep(1, 0))), (200.0, (HPA_NO_API, _dep(1, 0))), (250.0, (HPA_NO_API, DEPLOYMENT_1))]
    seen = summarize(_timeline(rows))
    assert (seen.first_ready_s, seen.blocked_for) == (250.0, 0.0)
    assert not finished(seen, HpaPlan(condition_grace_s=60), 300)


@pytest.mark.parametrize(("rows", "words"), [
    ([(0.0, (None, _dep(1, 0))), (300.0, (None, _dep(1, 0)))],
     "the Deployment's first pod was not Ready within 300s"),
    ([(0.0, (None, _dep(1, 1))), (600.0, (_hpa(1, "12"), _dep(1, 1)))],
     "the HPA kept 1 replica for 600s after its pod's load began (the HPA last read 12, target 50): it did not "
     "scale up"),
    ([(0.0, (None, _dep(1, 1))), (100.0, (_hpa(2, "97"), _dep(2, 1))), (600.0, (_hpa(2, "97"), _dep(2, 1)))],
     "the HPA asked for 2 replicas but no second pod was Ready within 600s"),
    ([(0.0, (None, _dep(1, 1))), (100.0, (_hpa(2, "97"), _dep(2, 2))), (700.0, (_hpa(2, "96"), _dep(2, 2)))],
     "scaled the Deployment from 1 to 2 Ready replicas 100.0s after the load began, but it did not scale back to 1 "
     "within 600s after that (the HPA last read 96, target 50)"),
])
def test_anything_less_fails_and_says_what_was_missing(rows: list, words: str) -> None:
    seen = summarize(_timeline(rows))
    assert finished(seen, PLAN, 300)
    status, message = judge_hpa(seen, PLAN, 300)
    assert status is Status.FAILED
    assert words in message


def test_a_pending_second_pod_is_quoted() -> None:
    seen = HpaSeen(elapsed=700, first_ready_s=10, peak_ready=1, peak_desired=2,
                   pending="Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
    assert judge_hpa(seen, PLAN, 300) == (Status.FAILED, "the HPA asked for 2 replicas but no second pod was Ready "
                                          "within 600s: Unschedulable: 0/3 nodes are available: 3 Insufficient "
                                          "nvidia.com/gpu.")


# -- the step's wiring and the profile -----------------------------------------------------------------------
def _config(tmp_path: Path, suite: str, **probes: object) -> provision.Config:
    data = load_profile("generic").model_dump()
    data["probes"].update(probes)
    return provision.make_config(argparse.Namespace(cluster_snapshot=None, kubeconfig="/dev/null", context=None,
                                                    no_active=False, suite=suite), parse_profile(data, "test"))


def _run(tmp_path: Path, config: provision.Config, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, FakeCluster]:
    node = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    fake = FakeCluster([node])
    monkeypatch.setattr("kaic.cluster.connect", lambda *a, **k: fake)
    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    ctx = StepContext(RunContext("kaic-test-run", "0.1.0", datetime.now(UTC), "generic"), load_profile("generic"),
                      store, tmp_path, "provision")
    return {o.check_id: o for o in provision.run(config, ctx)}, fake


def test_the_step_runs_the_probe_only_where_enabled_and_with_the_full_suite(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    off, _ = _run(tmp_path, _config(tmp_path, "full"), monkeypatch)
    assert off[CHECK].message == "pod autoscaling probe disabled (profile probes.pod_autoscaling: false)"
    quick, _ = _run(tmp_path, _config(tmp_path, "quick", pod_autoscaling=True), monkeypatch)
    assert quick[CHECK].status is Status.SKIPPED
    assert quick[CHECK].message.startswith("runs with --suite full only")
    full, fake = _run(tmp_path, _config(tmp_path, "full", pod_autoscaling=True), monkeypatch)
    assert full[CHECK].status is Status.FAILED  # FakeCluster serves no custom metrics API
    assert full[CHECK].message.startswith("custom.metrics.k8s.io is not served")
    assert not [o for o in fake.created if o["kind"] in ("Deployment", "HorizontalPodAutoscaler")]


def test_the_profile_carries_the_hpa_plan(tmp_path: Path) -> None:
    config = _config(tmp_path, "full", pod_autoscaling=True,
                     hpa={"metric": {"name": "gpu_busy", "type": "External", "target": 0.5}, "load_s": 120})
    assert (config.hpa.metric.name, config.hpa.metric.type, config.hpa.load_s) == ("gpu_busy", "External", 120)
    assert config.hpa.scale_down_window_s == 60  # the rest keeps its defaults
    with pytest.raises(ConfigError, match=r"probes\.hpa\.metric\.type: .*got 'Object'"):
        _config(tmp_path, "full", hpa={"metric": {"type": "Object"}})
    with pytest.raises(ConfigError, match=r"probes\.hpa\.max_replicas: .*got 1"):
        _config(tmp_path, "full", hpa={"max_replicas": 1})


# -- the load ---------------------------------------------------------------------------------------------
def test_the_load_burns_for_the_time_asked_then_idles(capsys: pytest.CaptureFixture[str]) -> None:
    assert burn.main(["--device", "cpu", "--size", "32", "--seconds", "0.2", "--idle-s", "0"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"burn: [1-9]\d* products of 32x32 on cpu in \d+\.\ds; idle now\n", out), out


def test_the_load_refuses_bad_input_and_a_missing_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        burn.main(["--seconds", "-1"])
    assert exc.value.code == 2
    assert "--seconds: must be 0 or more: '-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        burn.main(["--seconds", "1", "--device", "tpu"])
    assert exc.value.code == 2
    assert "--device must be cpu, cuda or cuda:N (got 'tpu')" in capsys.readouterr().err
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the missing-device path cannot be shown here")
    assert burn.main(["--seconds", "1"]) == 1
    assert capsys.readouterr().err == "burn: device cuda is not available (torch sees no CUDA device)\n"

