"""`serve.metrics_collected` (CNCF `ai_service_metrics`) against a real Prometheus (v3.16.0, built from its Go
module by `make cluster-build`) scraping the real KServe ModelServer the serve step starts.

The target is static here (fixed address, a `namespace` label standing in for the one Kubernetes discovery
adds), so no cluster is needed; `tests/e2e/test_prometheus_devcluster.py` finds the model's pod through the dev
cluster's API server instead. Real inference requests go through kaic's own load driver (`exercise`), and
kaic's own probe (`collection_outcome`) asks Prometheus' HTTP API what it collected.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaic import localproc
from kaic.devcluster import prometheus
from kaic.results import Status
from steps.serve import exercise, prom
from steps.serve.export import ExportedModel
from steps.serve.local import HOST, child_environ, free_port, server_command
from tests.prometheus_fixtures import send_requests

pytestmark = [pytest.mark.integration, pytest.mark.go_built]

NAMESPACE = "kaic-serve"
COLLECT_DEADLINE_S = 60.0  # a bound on waiting for scrapes (1 s apart), not a timed assertion
MISSING_DEADLINE_S = 4.0   # short: the negative case waits it out


@pytest.fixture(scope="module")
def server(digits_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[exercise.Endpoint]:
    """The serve step's ModelServer process (same command, same registry), stopped in finally."""
    home, run_id, port = tmp_path_factory.mktemp("home"), f"test-{secrets.token_hex(3)}", free_port()
    proc = localproc.start(run_id, server_command(digits_model.dir, port, 1, 1), name="model-server", port=port,
                           log=home / "server.log", environ=child_environ(), home=home)
    ep = exercise.Endpoint(HOST, port)
    try:
        exercise.wait_ready(ep, "digits", 90,
                            lambda: None if proc.poll() is None else (home / "server.log").read_text()[-2000:])
        yield ep
    finally:
        localproc.stop_all(run_id, grace_s=5, home=home)
        assert localproc.alive(run_id, home) == {}


def test_prometheus_reports_its_version(prometheus_binary: Path) -> None:
    import subprocess

    out = subprocess.run([str(prometheus_binary), "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.startswith("prometheus, version 3.16.0 "), out.stdout


def test_the_probe_passes_once_prometheus_scraped_the_served_requests(
        prometheus_binary: Path, server: exercise.Endpoint, digits_model: ExportedModel, tmp_path: Path) -> None:
    job = prometheus.static_scrape_config("kserve", [f"{server.host}:{server.port}"], {"namespace": NAMESPACE})
    with prometheus.Prometheus.start(prometheus_binary, prometheus.config([job]), tmp_path / "prom") as p:
        checks, sent = send_requests(server, digits_model)
        out = prom.collection_outcome(checks, p.url, digits_model.name, NAMESPACE, COLLECT_DEADLINE_S)
        [target] = p.targets()
        assert target["health"] == "up", target
    assert out.status is Status.PASSED, out.message
    assert out.check_id == prom.COLLECTED_CHECK
    assert out.value is not None
    assert out.value >= sent
    assert f'model_name="digits",namespace="{NAMESPACE}"' in out.message


def test_the_probe_fails_at_its_deadline_when_the_model_is_not_scraped(
        prometheus_binary: Path, server: exercise.Endpoint, digits_model: ExportedModel, tmp_path: Path) -> None:
    # A Prometheus with no job for the model: up and answering queries, but it never collected the model.
    with prometheus.Prometheus.start(prometheus_binary, prometheus.config([]), tmp_path / "prom") as p:
        checks, _ = send_requests(server, digits_model)
        out = prom.collection_outcome(checks, p.url, digits_model.name, NAMESPACE, MISSING_DEADLINE_S)
    assert out.status is Status.FAILED
    assert f"after {MISSING_DEADLINE_S:g}s:" in out.message
    assert "= 0, fewer than the" in out.message
