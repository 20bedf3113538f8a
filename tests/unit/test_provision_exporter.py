"""accelerator_metrics' ACTIVE probe (provision.exporter_scrape): the exposition parser and the verdict on real
dcgm-exporter outputs (tests/fixtures/dcgm/, each citing its source; the busy one is derived and says so), the
load pod, and the orchestration on FakeCluster (the dev cluster's negative case: tests/e2e/
test_provision_exporter_devcluster.py)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import steps.provision as provision
from kaic.cluster.fake import FakeCluster
from kaic.deploy_check import pss
from kaic.errors import ConfigError
from kaic.profiles import ExporterProbe, load_profile, parse_profile
from kaic.results import RunContext, Status
from kaic.stepkit import StepContext
from kaic.stores.objects import open_store
from steps.provision.active import PodSettings
from steps.provision.active_exporter import (
    CHECK,
    LOAD_SCRIPT,
    METRIC,
    PROBE,
    Device,
    ExporterScrape,
    ExporterSeen,
    ExporterSettings,
    MetricNames,
    NodeSeen,
    highest,
    judge_exporter,
    load_pod,
    parse_devices,
)
from steps.provision.active_platform import Clock
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcgm"
NAMES = MetricNames()
GPU = "nvidia.com/gpu"
UUID = "GPU-7ad09335-aadb-19c3-e3a8"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


IDLE, BUSY = text("rtx-a5000_idle.prom"), text("rtx-a5000_busy.prom")
NO_MEMORY, FB_FREE_ONLY = text("titan-v_busy_no-memory.prom"), text("a100x4_fb-free-only.prom")


def test_every_fixture_cites_its_source() -> None:
    for path in FIXTURES.glob("*.prom"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# source: "), path.name
        assert "https://github.com/" in first, path.name
    assert "DERIVED" in BUSY.splitlines()[0]


# -- parser ---------------------------------------------------------------------------------------------------
def test_a_real_idle_scrape_gives_the_device_utilization_and_memory() -> None:
    assert parse_devices(IDLE, NAMES) == (Device(UUID, utilization=0, memory=21383),)
    assert parse_devices(BUSY, NAMES) == (Device(UUID, utilization=97, memory=22407),)


def test_temperature_and_power_are_read_where_the_exporter_has_them() -> None:
    (d,) = parse_devices(NO_MEMORY, NAMES)
    assert (d.key, d.utilization, d.memory, d.temperature, d.power) == (
        "GPU-6bf47ca9-ad3e-15db-beed-1079a7d74116", 44, None, 55, 302.206)
    assert parse_devices(NO_MEMORY, MetricNames(temperature=None, power=None))[0].temperature is None


def test_metric_names_come_from_the_profile_and_label_order_does_not_matter() -> None:
    assert parse_devices(FB_FREE_ONLY, NAMES) == ()  # none of the default series
    devices = parse_devices(FB_FREE_ONLY, MetricNames(memory="DCGM_FI_DEV_FB_FREE"))
    assert [(d.key, d.memory, d.utilization) for d in devices] == [
        ("GPU-00b0279e-9a2e-56e3-90e2-52d8551d6031", 11441, None),
        ("GPU-bdf06b03-d5d7-5b41-932e-5fdd2ef59ddc", 11441, None),
        ("GPU-cc0557e3-8fbd-51f0-b7d3-7a548c581d7f", 11441, None),
        ("GPU-ef912753-2d5d-55ba-8ab5-dd7a82f54876", 11441, None)]


def test_mig_instances_are_devices_of_their_own() -> None:
    # Two series of https://github.com/NVIDIA/dcgm-exporter/issues/317 (an A30 in MIG mode), verbatim.
    lines = "\n".join(
        f'DCGM_FI_DEV_FB_USED{{gpu="0",UUID="GPU-265c9814-6156-355b-e589-ff2064894f16",device="nvidia0",'
        f'modelName="NVIDIA A30",GPU_I_PROFILE="1g.6gb",GPU_I_ID="{i}",'
        f'Hostname="yg-data-k8s-gpu-a30-node-test-test0003.mt"}} 3' for i in (3, 4)) + "\n"
    assert [d.key for d in parse_devices(lines, NAMES)] == ["GPU-265c9814-6156-355b-e589-ff2064894f16/3",
                                                          "GPU-265c9814-6156-355b-e589-ff2064894f16/4"]


def test_series_of_one_device_keep_the_highest_and_unlabelled_series_are_left_out() -> None:
    body = ('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",pod=""} 3\n'
            'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",pod="train-0"} 88\n'
            'DCGM_FI_DEV_GPU_UTIL{Hostname="n"} 50\n')
    assert parse_devices(body, NAMES) == (Device("GPU-a", utilization=88),)


def test_text_that_is_not_the_exposition_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        parse_devices("<html><body>502 Bad Gateway</body></html>\n", NAMES)


def test_highest_merges_scrapes_per_device() -> None:
    a = (Device("x", 10, 100, None, 50.0), Device("y", 0, 5))
    b = (Device("x", 40, 90, 61.0, None), Device("z", 1, 1))
    assert highest(a, b) == (Device("x", 40, 100, 61.0, 50.0), Device("y", 0, 5), Device("z", 1, 1))


# -- verdict --------------------------------------------------------------------------------------------------
def node(name: str, before: str = IDLE, during: str | None = BUSY, **kw: object) -> NodeSeen:
    values: dict[str, object] = {"exporter": f"gpu-operator/nvidia-dcgm-exporter-{name}",
                                 "before": parse_devices(before, NAMES),
                                 "during": parse_devices(during, NAMES) if during else (), "scrapes": 12, **kw}
    return NodeSeen(name, **values)  # type: ignore[arg-type]


def verdict(*nodes: NodeSeen) -> tuple[Status, str]:
    return judge_exporter(ExporterSeen(nodes, NAMES, "pods labelled app=nvidia-dcgm-exporter in any namespace", 60))


def test_passed_only_when_every_node_reports_both_and_moves_under_load() -> None:
    status, message = verdict(node("gpu-a"), node("gpu-b"))
    assert status is Status.PASSED
    assert "rose under a 60s accelerator load" in message
    assert f"gpu-a: {UUID} utilization 0->97%, memory 21383->22407 MiB" in message


def test_memory_rising_alone_counts_as_movement() -> None:
    during = BUSY.replace("} 97", "} 0")
    assert verdict(node("gpu-a", during=during))[0] is Status.PASSED


def test_nothing_moved_fails_with_the_values() -> None:
    status, message = verdict(node("gpu-a"), node("gpu-b", during=IDLE))
    assert status is Status.FAILED
    assert message.endswith(f"any device of gpu-b (12 scrapes): {UUID} utilization 0->0%, memory 21383->21383 MiB")


def test_nodes_without_an_exporter_fail_by_name() -> None:
    status, message = verdict(node("gpu-a"), NodeSeen("gpu-b"), NodeSeen("gpu-c"))
    assert status is Status.FAILED
    assert message == ("no exporter pod Running on accelerator node(s) gpu-b, gpu-c (looked for pods labelled "
                       "app=nvidia-dcgm-exporter in any namespace)")


def test_a_missing_memory_metric_fails_naming_it() -> None:
    status, message = verdict(node("gpu-a"), node("gpu-b", before=NO_MEMORY, during=None))
    assert status is Status.FAILED
    assert message == "gpu-operator/nvidia-dcgm-exporter-gpu-b on gpu-b reports no per-device DCGM_FI_DEV_FB_USED"


def test_missing_utilization_and_memory_fail_naming_both() -> None:
    status, message = verdict(node("gpu-a", before=FB_FREE_ONLY, during=None))
    assert status is Status.FAILED
    assert message.endswith("reports no per-device DCGM_FI_DEV_GPU_UTIL or DCGM_FI_DEV_FB_USED")


def test_a_scrape_that_failed_fails() -> None:
    status, message = verdict(node("gpu-a", error="ClusterError: HTTP 503: error trying to reach service"))
    assert status is Status.FAILED
    assert message.startswith("could not scrape the exporter: gpu-operator/nvidia-dcgm-exporter-gpu-a on gpu-a: ")


def test_a_load_that_did_not_run_leaves_movement_unverified() -> None:
    status, message = verdict(node("gpu-a", during=None, load="pod x not Running after 300s (Unschedulable: 0/1)"))
    assert status is Status.SKIPPED
    assert message.startswith("unverified: the exporters of 1 accelerator node(s) report per-device")
    assert "the load pod did not run on gpu-a: pod x not Running after 300s" in message


def test_no_accelerator_node_is_a_skip() -> None:
    assert verdict()[0] is Status.SKIPPED


# -- the load pod ---------------------------------------------------------------------------------------------
SETTINGS = PodSettings("kaic", "ghcr.io/kaic-dev/kaic:0.1.0", "kaic-test-run-0001", GPU,
                       tolerations=({"key": GPU, "operator": "Exists", "effect": "NoSchedule"},))


def test_the_load_pod_holds_one_accelerator_on_its_node_and_meets_restricted() -> None:
    pod = load_pod("kaic-x-load-0", SETTINGS, "gpu-a", 45)
    spec = pod["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-a"]}]}]
    (c,) = spec["containers"]
    assert c["resources"]["limits"][GPU] == "1"
    assert c["command"][:2] == ["python", "-c"]
    assert c["command"][3] == "45"
    assert pod["metadata"]["labels"] == {"kaic.dev/probe": PROBE, "kaic.dev/run-id": "kaic-test-run-0001"}
    assert spec["tolerations"] == [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    assert pss.restricted(spec) == []
    compile(LOAD_SCRIPT, "load", "exec")  # the script is Python


# -- orchestration on FakeCluster -----------------------------------------------------------------------------
@pytest.fixture
def real_node() -> dict:
    doc = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                     .read_text())
    return doc["items"][0]


def gpu_nodes(real: dict, *names: str) -> list[dict]:
    out = []
    for name in names:
        n = json.loads(json.dumps(real))
        n["metadata"]["name"] = name
        out.append(n)
    return out


def add_exporter(fake: FakeCluster, node: str, idle: str = IDLE, busy: str = BUSY) -> None:
    """An exporter pod on `node` serving the recorded outputs: the busy one while a load pod runs there."""
    name = f"nvidia-dcgm-exporter-{node}"
    fake._store({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "gpu-operator",
                                                                 "labels": {"app": "nvidia-dcgm-exporter"}},
                 "spec": {"nodeName": node, "containers": [{"name": "e", "image": "dcgm-exporter"}]},
                 "status": {"phase": "Running"}})

    def respond(port: int, path: str) -> str:
        assert (port, path) == (9400, "/metrics")
        loaded = any(p.node == node and p.obj["status"]["phase"] == "Running" for p in fake.pods.values())
        return busy if loaded else idle

    fake.serve_http("gpu-operator", name, respond)


def probe(fake: FakeCluster, selectors: tuple[str, ...] = ("app=nvidia-dcgm-exporter",)) -> ExporterScrape:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += max(s, 0.01)

    return ExporterScrape(fake, SETTINGS, ExporterSettings(selectors, None, load_s=30, timeout_s=60),
                          Clock(0.5, lambda: t[0], sleep))


def test_the_probe_passes_on_exporters_that_move_and_deletes_its_pods(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a", "gpu-b"))
    add_exporter(fake, "gpu-a")
    add_exporter(fake, "gpu-b")
    out = probe(fake, ("app.kubernetes.io/name=dcgm-exporter", "app=nvidia-dcgm-exporter")).run()
    assert out.status is Status.PASSED, out.message
    assert (out.check_id, out.metric, out.value, out.unit) == (CHECK, METRIC, 97, "%")
    assert out.evidence == ("gpu-a: gpu-operator/nvidia-dcgm-exporter-gpu-a; "
                            "gpu-b: gpu-operator/nvidia-dcgm-exporter-gpu-b")
    loads = [p for p in fake.created if p["metadata"]["labels"].get("kaic.dev/probe") == PROBE]
    assert all("nodeName" not in p["spec"] for p in loads)  # pinned by node affinity, placed by the scheduler
    assert len(loads) == 2
    assert fake.list("v1", "pods", "kaic") == []


def test_exporters_that_do_not_move_fail(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a"))
    add_exporter(fake, "gpu-a", busy=IDLE)
    out = probe(fake).run()
    assert out.status is Status.FAILED
    assert "neither DCGM_FI_DEV_GPU_UTIL nor DCGM_FI_DEV_FB_USED rose" in out.message
    assert fake.list("v1", "pods", "kaic") == []


def test_a_node_without_exporter_fails_before_any_pod_is_made(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a", "gpu-b"))
    add_exporter(fake, "gpu-a")
    out = probe(fake).run()
    assert out.status is Status.FAILED
    assert out.message.startswith("no exporter pod Running on accelerator node(s) gpu-b (looked for pods labelled "
                                  "app=nvidia-dcgm-exporter in any namespace)")
    assert fake.created == []


def test_an_exporter_without_memory_fails_before_any_pod_is_made(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a"))
    add_exporter(fake, "gpu-a", idle=NO_MEMORY)
    out = probe(fake).run()
    assert (out.status, out.message) == (Status.FAILED, "gpu-operator/nvidia-dcgm-exporter-gpu-a on gpu-a reports "
                                                        "no per-device DCGM_FI_DEV_FB_USED")
    assert fake.created == []


def test_an_unreachable_exporter_fails_with_the_api_servers_answer(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a"))
    add_exporter(fake, "gpu-a")
    fake.http.clear()  # the pod runs, nothing listens on its port
    out = probe(fake).run()
    assert out.status is Status.FAILED
    assert "ClusterError: error trying to reach service" in out.message


def test_a_load_pod_that_cannot_be_placed_leaves_movement_unverified(real_node: dict) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a"))
    add_exporter(fake, "gpu-a")
    other = PodSettings("kaic", "img", "another-run", GPU)
    fake.create(load_pod("someone-elses", other, "gpu-a", 1))  # another run's pod holds the only accelerator
    assert (fake.get("v1", "pods", "someone-elses", "kaic") or {})["status"]["phase"] == "Running"
    out = probe(fake).run()
    assert out.status is Status.SKIPPED
    assert "the load pod did not run on gpu-a: pod kaic-" in out.message
    assert "Unschedulable" in out.message
    assert [p["metadata"]["name"] for p in fake.list("v1", "pods", "kaic")] == ["someone-elses"]


class FailingLoads(FakeCluster):
    """The kubelet's view of a load that exits at once (no CUDA device in the container)."""

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        obj = super().get(group_version, plural, name, namespace)
        if obj and ((obj.get("metadata") or {}).get("labels") or {}).get("kaic.dev/probe") == PROBE:
            obj["status"] = {"phase": "Failed", "containerStatuses": [{"name": "load", "state": {"terminated": {
                "exitCode": 1, "reason": "Error", "message": "KAIC-LOAD no CUDA device visible\n"}}}]}
        return obj


def test_a_load_that_exits_says_why_and_leaves_movement_unverified(real_node: dict) -> None:
    fake = FailingLoads(gpu_nodes(real_node, "gpu-a"))
    add_exporter(fake, "gpu-a")
    out = probe(fake).run()
    assert out.status is Status.SKIPPED
    assert out.message.endswith("the load pod did not run on gpu-a: pod kaic-estrun0001-exporter-load-0 failed "
                                "(exit code 1: KAIC-LOAD no CUDA device visible)")
    assert fake.list("v1", "pods", "kaic") == []


# -- the step and the profile ---------------------------------------------------------------------------------
def _ctx(tmp_path: Path) -> StepContext:
    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    run = RunContext("kaic-test-run", "0.1.0", datetime.now(UTC), "generic")
    return StepContext(run, load_profile("generic"), store, tmp_path, "provision")


def _args() -> argparse.Namespace:
    return argparse.Namespace(cluster_snapshot=None, kubeconfig="/dev/null", context=None, no_active=False)


def _row(tmp_path: Path, fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, probes: dict) -> tuple[Status, str]:
    monkeypatch.setattr("kaic.cluster.connect", lambda *a, **k: fake)
    base = load_profile("generic").model_dump()
    base["probes"].update(probes)
    base["accelerator"]["per_worker"] = 1
    config = provision.make_config(_args(), parse_profile(base, "test"))
    (row,) = [o for o in provision.run(config, _ctx(tmp_path)) if o.check_id == CHECK]
    return row.status, row.message


def test_the_step_runs_the_probe_where_the_profile_enables_it(tmp_path: Path, real_node: dict,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCluster(gpu_nodes(real_node, "gpu-a"))
    status, message = _row(tmp_path, fake, monkeypatch, {"exporter_scrape": True})
    assert status is Status.FAILED
    assert message.startswith("no exporter pod Running on accelerator node(s) gpu-a (looked for pods labelled "
                              "app=nvidia-dcgm-exporter or app.kubernetes.io/name=dcgm-exporter in any namespace)")
    status, message = _row(tmp_path, fake, monkeypatch, {})
    assert (status, message) == (Status.SKIPPED, "exporter probe disabled (profile probes.exporter_scrape: false)")


def test_the_profile_defaults_find_dcgm_exporter_and_bad_values_are_named() -> None:
    e = ExporterProbe()
    assert (e.pod_selectors, e.namespace, e.port, e.path) == (
        ("app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter"), None, 9400, "/metrics")
    assert (e.utilization_metric, e.memory_metric) == ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")
    base = load_profile("generic").model_dump()
    base["probes"]["exporter"] = {"port": 0}
    with pytest.raises(ConfigError, match=r"probes\.exporter\.port: .*\(got 0\)"):
        parse_profile(base, "test")
