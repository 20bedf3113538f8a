"""The dev cluster's Prometheus: its build row (tags, version ldflags) and its configuration, as pure data.
`tests/integration/test_prometheus_collects.py` and `tests/e2e/test_prometheus_devcluster.py` run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.devcluster import prometheus
from kaic.devcluster.build import COMPONENTS, PROMETHEUS, build_command

pytestmark = pytest.mark.unit


def test_prometheus_is_built_with_only_file_http_and_kubernetes_discovery_and_its_version() -> None:
    assert PROMETHEUS in COMPONENTS  # `make cluster-build` (and CI) build it
    argv, _, env = build_command(PROMETHEUS, Path("/tmp/out"))
    assert argv[argv.index("-tags") + 1] == "remove_all_sd,enable_kubernetes_sd"
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in argv[argv.index("-ldflags") + 1]
    assert argv[-1] == "github.com/prometheus/prometheus/cmd/prometheus@v0.316.0"
    assert env["GOBIN"] == "/tmp/out"
    assert PROMETHEUS.binaries == ("prometheus",)


def test_pod_discovery_keeps_annotated_pods_and_labels_their_namespace() -> None:
    access = prometheus.KubernetesAccess("https://127.0.0.1:6443", Path("/t/token"), Path("/t/ca.crt"))
    job = prometheus.pod_scrape_config("pods", access, ["kaic-a"])
    sd = job["kubernetes_sd_configs"][0]
    assert (sd["role"], sd["api_server"], sd["namespaces"]) == ("pod", "https://127.0.0.1:6443", {"names": ["kaic-a"]})
    assert sd["authorization"] == {"credentials_file": "/t/token"}
    assert sd["tls_config"] == {"ca_file": "/t/ca.crt"}
    rules = job["relabel_configs"]
    assert rules[0] == {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "action": "keep", "regex": "true"}
    port = next(r for r in rules if r.get("target_label") == "__address__")
    assert port["source_labels"][1] == "__meta_kubernetes_pod_annotation_prometheus_io_port"
    assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"} in rules


def test_config_scrapes_every_job_at_the_interval() -> None:
    cfg = prometheus.config([prometheus.static_scrape_config("s", ["127.0.0.1:8080"], {"namespace": "n"})], 1.0)
    assert cfg["global"]["scrape_interval"] == cfg["global"]["scrape_timeout"] == "1000ms"
    assert cfg["scrape_configs"] == [{"job_name": "s", "static_configs": [{"targets": ["127.0.0.1:8080"],
                                                                           "labels": {"namespace": "n"}}]}]
