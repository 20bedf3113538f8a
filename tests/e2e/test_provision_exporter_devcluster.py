"""provision.exporter_scrape against a real control plane (the dev cluster): its kwok GPU nodes advertise
nvidia.com/gpu but run no metrics exporter, so the probe must fail naming those nodes, and create nothing.

Then the scrape path itself through the real API server: a plain pod (busybox, serving nothing) stands where an
exporter would run and the probe is pointed at it by label; the API server's own answer to the proxied GET
(`pods/NAME:9400/proxy/metrics`) must come back as the failure, never a pass.
"""

from __future__ import annotations

import pytest

from kaic.cluster import ClusterClient, labelled, run_selector, wait_until
from kaic.profiles import ExporterProbe
from kaic.results import Status
from steps.provision.active import PodSettings
from steps.provision.active_exporter import ExporterScrape, ExporterSettings, MetricNames

pytestmark = pytest.mark.e2e

NAMESPACE = "kaic-queue"  # the namespace the dev cluster's probes use (docs/dev-cluster.md)
GPU = "nvidia.com/gpu"
NOT_READY = ({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},)


def _settings(run: str, **kw: object) -> PodSettings:
    values: dict[str, object] = {"tolerations": NOT_READY, "timeout_s": 60.0, **kw}
    return PodSettings(NAMESPACE, "busybox:1.36", run, GPU, **values)  # type: ignore[arg-type]


def _exporter(e: ExporterProbe) -> ExporterSettings:
    return ExporterSettings(e.pod_selectors, e.namespace, e.port, e.path,
                            MetricNames(e.utilization_metric, e.memory_metric, e.temperature_metric, e.power_metric),
                            e.load_s, 60.0)


def _gpu_nodes(cluster: ClusterClient) -> list[str]:
    return sorted(str(n["metadata"]["name"]) for n in cluster.list("v1", "nodes")
                  if int(((n.get("status") or {}).get("allocatable") or {}).get(GPU, "0")) > 0)


def _left(cluster: ClusterClient, run: str) -> list[str]:
    return [f"{(p.get('metadata') or {}).get('namespace')}/{(p.get('metadata') or {}).get('name')}"
            for p in cluster.list("v1", "pods", None, run_selector(run))]


def test_gpu_nodes_without_an_exporter_fail_by_name_and_nothing_is_created(cluster: ClusterClient) -> None:
    run = "kaic-e2e-exporter-0001"
    nodes = _gpu_nodes(cluster)
    assert len(nodes) >= 2  # the dev cluster's GPU pool (devcluster/topology.yaml)
    out = ExporterScrape(cluster, _settings(run), _exporter(ExporterProbe())).run()
    assert out.status is Status.FAILED, out.message
    assert out.message == (f"no exporter pod Running on accelerator node(s) {', '.join(nodes)} (looked for pods "
                           "labelled app=nvidia-dcgm-exporter or app.kubernetes.io/name=dcgm-exporter in any "
                           "namespace)")
    assert out.value is None
    assert _left(cluster, run) == []


def test_the_api_servers_answer_to_the_proxied_scrape_is_the_failure(cluster: ClusterClient) -> None:
    run = "kaic-e2e-exporter-0002"
    node = _gpu_nodes(cluster)[0]
    selector = f"{run_selector(run)},kaic.dev/probe=stand-in"
    pod = labelled({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "kaic-e2e-exporter-stand-in", "namespace": NAMESPACE,
                                 "labels": {"kaic.dev/probe": "stand-in"}},
                    "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "tolerations": list(NOT_READY),
                             "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "600"]}]}},
                   run)
    cluster.create(pod)
    try:
        wait_until(lambda: ((cluster.get("v1", "pods", "kaic-e2e-exporter-stand-in", NAMESPACE) or {})
                            .get("status") or {}).get("phase") == "Running", 60, "the stand-in pod to run")
        settings = _settings(run, node_selector={"kubernetes.io/hostname": node})
        exporter = _exporter(ExporterProbe(pod_selectors=(selector,), namespace=NAMESPACE))
        out = ExporterScrape(cluster, settings, exporter).run()
    finally:
        cluster.delete_collection("v1", "pods", NAMESPACE, run_selector(run))
        wait_until(lambda: not _left(cluster, run), 60, "the stand-in pod to be deleted")
    assert out.status is Status.FAILED, out.message
    assert out.message.startswith(f"could not scrape the exporter: {NAMESPACE}/kaic-e2e-exporter-stand-in on "
                                  f"{node}: ClusterError: GET /api/v1/namespaces/{NAMESPACE}/pods/"
                                  "kaic-e2e-exporter-stand-in:9400/proxy/metrics: HTTP ")
    assert _left(cluster, run) == []
