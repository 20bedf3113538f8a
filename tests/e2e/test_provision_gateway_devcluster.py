"""ai_inference's probe (`provision.gateway_routing`) against a real control plane: the dev cluster serves Gateway
API's CRDs (v1.6.3, validated by the API server) but runs no Gateway controller or data plane (none can be built
from the Go module proxy here), so nothing ever programs a Gateway or accepts a route. The probe must say exactly
that, FAILED, and leave nothing behind. No gateway is faked: the Gateway object is real and stays as the API
server keeps it.

What the dev cluster shows for real: Pod Security admitting the backends (a `restricted` namespace), the API
server validating the HTTPRoute against the CRD, the scheduler placing the backends (kwok runs them), and the
probe's deletion of everything it created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaic.cluster import run_selector
from kaic.cluster.kube import KubeCluster
from kaic.results import Status
from steps.provision.active import PodSettings
from steps.provision.active_gateway import CHECK, GatewayRouting
from steps.serve.isvc import ROUTE_GROUP_VERSION, ROUTE_PLURAL
from tests.e2e import live

pytestmark = pytest.mark.e2e

SETTLE_S = 10.0  # how long the probe waits for the Gateway and the route (a bound on waiting, not a timing)


@pytest.fixture(scope="module")
def kc(kubeconfig: str) -> KubeCluster:
    return live.connect(kubeconfig)


@pytest.fixture
def ns(kc: KubeCluster) -> Iterator[str]:
    with live.namespace(kc, "kaic-gw") as name:
        yield name


def _gateway(kc: KubeCluster, ns: str, name: str = "inference") -> dict:
    """A real Gateway object of a class no controller serves: the API server keeps it as created."""
    return kc.create({"apiVersion": ROUTE_GROUP_VERSION, "kind": "Gateway",
                      "metadata": {"name": name, "namespace": ns},
                      "spec": {"gatewayClassName": "kaic-e2e-no-controller",
                               "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})


def _settings(ns: str, run: str) -> PodSettings:
    return PodSettings(ns, live.profile(ns).image, run, "nvidia.com/gpu", timeout_s=SETTLE_S)


def _left(kc: KubeCluster, ns: str, run: str) -> list[str]:
    sel = run_selector(run)
    return [f"{plural}/{(o.get('metadata') or {}).get('name')}" for gv, plural in (
        ("v1", "pods"), ("v1", "services"), (ROUTE_GROUP_VERSION, ROUTE_PLURAL)) for o in kc.list(gv, plural, ns, sel)]


def test_an_unprogrammed_gateway_fails_the_probe_and_nothing_is_left(kc: KubeCluster, ns: str) -> None:
    gw = _gateway(kc, ns)
    assert gw["metadata"]["name"] == "inference"
    run = "kaic-e2e-gateway-0001"
    try:
        out = GatewayRouting(kc, _settings(ns, run), f"{ns}/inference", requests=20, header_requests=2).run()
    finally:
        kc.delete(ROUTE_GROUP_VERSION, "gateways", "inference", ns)
    assert out.status is Status.FAILED, (out.message, out.evidence)
    assert out.message.startswith(f"not routable within {SETTLE_S:g}s: ")
    assert f"Gateway {ns}/inference not Programmed (Programmed=Unknown (Pending: Waiting for controller))" \
        in out.message
    assert f"Gateway {ns}/inference has no address in its status" in out.message
    assert "not Accepted with ResolvedRefs by its Gateway (no parent status: no Gateway controller has taken it up)" \
        in out.message
    assert "backend pods Ready" not in out.message  # the scheduler placed both and kwok reports them Ready
    assert out.metric is None  # no request was sent: nothing measured
    assert _left(kc, ns, run) == []


def test_a_gateway_that_does_not_exist_fails_before_anything_is_created(kc: KubeCluster, ns: str) -> None:
    run = "kaic-e2e-gateway-0002"
    out = GatewayRouting(kc, _settings(ns, run), "kaic-e2e-absent/inference").run()
    assert out.status is Status.FAILED
    assert out.message == "Gateway kaic-e2e-absent/inference (profile serving.gateway) not found"
    assert _left(kc, ns, run) == []


def test_the_provision_step_reports_the_probe(kubeconfig: str, kc: KubeCluster, ns: str, tmp_path: Path) -> None:
    """`kaic step provision` with only this probe enabled: the profile's switch and serving.gateway reach it, and
    its row is FAILED with the reason."""
    _gateway(kc, ns)
    profile = tmp_path / "gateway.yaml"
    profile.write_text(json.dumps({
        "name": "devcluster-gateway", "platform": "devcluster", "image": live.profile(ns).image,
        "kubernetes": {"kubeconfig": kubeconfig, "namespace": ns},
        "probes": {"active": True, "gateway_routing": True, "gateway_requests": 20, "gateway_header_requests": 2,
                   "timeout_s": SETTLE_S},
        "serving": {"gateway": "inference"},  # same namespace as the probe
    }))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "kaic.cli", "step", "provision", "--profile", str(profile), "--run-id",
             "kaic-e2e-gateway-step"], env={**os.environ, "KAIC_HOME": str(tmp_path / "home")},
            capture_output=True, text=True, timeout=600)
    finally:
        kc.delete(ROUTE_GROUP_VERSION, "gateways", "inference", ns)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    line = next(ln for ln in run.stdout.splitlines() if f" {CHECK} " in ln or f" {CHECK}[" in ln)
    assert line.split()[0] == "FAIL", line
    assert f"Gateway {ns}/inference not Programmed" in line
    assert _left(kc, ns, "kaic-e2e-gateway-step") == []
