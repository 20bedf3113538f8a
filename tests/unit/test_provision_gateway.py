"""ai_inference's probe, pure parts and the backend: the verdict on what was observed (passes only as declared),
what still blocks routing, the objects it creates (valid against Kubernetes' schemas and Gateway API's HTTPRoute
CRD), and `kaic.whoami` answering its name over real HTTP. The driver runs on the dev cluster
(tests/e2e/test_provision_gateway_devcluster.py)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic import whoami
from kaic.cluster import RUN_ID_LABEL
from kaic.deploy_check.validate import validate
from kaic.results import Status
from steps.provision.active import PodSettings
from steps.provision.active_gateway import (
    ROUTE_HEADER,
    WEIGHTS,
    RouteSeen,
    Tally,
    backend_pod,
    backend_service,
    backends,
    fetch_http,
    judge_routing,
    pending_problems,
    route_path,
    routing_route,
    split_band,
)
from tests.unit.test_serve_isvc import strict

pytestmark = pytest.mark.unit

RUN = "kaic-20261207-081500-ab12cd"
S = PodSettings("kaic", "ghcr.io/kaic-dev/kaic:0.1.0", RUN, "nvidia.com/gpu",
                tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},))
B = backends(RUN)
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.6.3"  # what the dev cluster installs (kaic/devcluster/build.py)


def seen(plain: tuple[int, int, int] = (160, 40, 0), header: tuple[int, int, int] = (0, 20, 0),
         sample: str = "") -> RouteSeen:
    return RouteSeen(WEIGHTS, Tally(*plain), Tally(*header), sample_error=sample)


# -- the verdict ---------------------------------------------------------------------------------------------
def test_a_split_and_a_match_as_declared_pass() -> None:
    status, message = judge_routing(seen())
    assert status is Status.PASSED, message
    assert message.startswith(f"all 20 requests with {ROUTE_HEADER}: b answered by B; without it B answered 40/200 "
                              "(0.200), A 160")
    assert "declared 80/20: expected 40.0, 4-sigma band 17.4-62.6" in message
    assert seen().fraction_b == 0.2


@pytest.mark.parametrize("b", [18, 62])  # the band's edges still pass: a correct 80/20 lands there by chance
def test_sampling_noise_inside_the_band_passes(b: int) -> None:
    assert judge_routing(seen(plain=(200 - b, b, 0)))[0] is Status.PASSED


@pytest.mark.parametrize(("a", "b"), [(100, 100), (183, 17), (137, 63)])
def test_a_split_other_than_declared_fails_with_the_counts(a: int, b: int) -> None:
    status, message = judge_routing(seen(plain=(a, b, 0)))
    assert status is Status.FAILED
    assert f"B answered {b}/200 ({b / 200:.3f}) of the requests without the header, outside the band" in message


def test_a_header_request_answered_by_a_fails() -> None:
    status, message = judge_routing(seen(header=(1, 19, 0)))
    assert status is Status.FAILED
    assert f"of 20 requests with {ROUTE_HEADER}: b, B answered 19, A 1, none 0: the header match did not route" \
        in message


def test_a_missing_backend_fails() -> None:
    status, message = judge_routing(seen(plain=(200, 0, 0)))
    assert status is Status.FAILED
    assert "only A answered the requests without the header (A 200, B 0): no split" in message
    status, message = judge_routing(seen(plain=(0, 200, 0), header=(0, 20, 0)))
    assert status is Status.FAILED
    assert "only B answered" in message


def test_failed_requests_fail_and_are_quoted() -> None:
    status, message = judge_routing(seen(plain=(158, 40, 2), sample="OSError: HTTP 503 Service Unavailable"))
    assert status is Status.FAILED
    assert "2/200 requests without the header got no backend's answer" in message
    assert message.endswith("e.g. OSError: HTTP 503 Service Unavailable")
    assert judge_routing(seen(header=(0, 19, 1)))[0] is Status.FAILED


def test_the_band_is_binomial() -> None:
    lo, hi = split_band(200, 0.2, 4)
    assert (round(lo, 2), round(hi, 2)) == (17.37, 62.63)  # 40 -+ 4 * sqrt(200 * 0.2 * 0.8)
    assert split_band(10, 0.5, 4) == (0.0, 10.0)  # 5 -+ 6.3, clipped to what can be counted


def test_answers_are_counted_by_backend_name() -> None:
    t = Tally().add(B.a, B).add(B.b, B).add(None, B).add("someone else", B)
    assert (t.a, t.b, t.other, t.total) == (1, 1, 2, 4)


# -- what may claim ai_inference ----------------------------------------------------------------------------
def test_only_the_routing_probe_can_make_ai_inference_implemented() -> None:
    """serve.gateway_route routes to one backend: kaic's own MUST, no CNCF id, so its pass proves nothing of
    splits or matches. The routing probe's pass does; its failure is Not Implemented."""
    from kaic import catalog
    from kaic.catalog.evidence import Verdict
    from tests.unit.test_evidence_rule import _row, _verdict

    route = catalog.check("serve.gateway_route")
    assert route.requirement_id is None
    assert route.level.value == "MUST"
    assert [c.check_id for c in catalog.CHECKS.values() if c.requirement_id == "ai_inference"] == [
        "provision.gateway_api", "provision.gateway_routing"]
    read = _row("provision.gateway_api", Status.PASSED)
    assert _verdict(read, _row("provision.gateway_routing", Status.SKIPPED, "probe disabled")) is Verdict.UNVERIFIED
    assert _verdict(read, _row("provision.gateway_routing", Status.PASSED)) is Verdict.VERIFIED
    assert _verdict(read, _row("provision.gateway_routing", Status.FAILED)) is Verdict.FAILED


# -- what blocks routing -------------------------------------------------------------------------------------
def _gateway(programmed: str | None = "True", address: str | None = "203.0.113.7") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if programmed:
        status["conditions"] = [{"type": "Programmed", "status": programmed, "reason": "Pending",
                                 "message": "Waiting for controller"}]
    if address:
        status["addresses"] = [{"type": "IPAddress", "value": address}]
    return {"spec": {"gatewayClassName": "x", "listeners": [{"name": "http", "protocol": "HTTP", "port": 8080}]},
            "status": status}


def _accepted(route: dict[str, Any]) -> dict[str, Any]:
    return {**route, "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"},
                                                           {"type": "ResolvedRefs", "status": "True"}]}]}}


def _pod(name: str, ready: bool) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": "Running" if ready else "Pending", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}] if ready else [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}}


def test_nothing_blocks_a_programmed_gateway_an_accepted_route_and_ready_backends() -> None:
    route = _accepted(routing_route(B, "gw-ns/gw", S))
    assert pending_problems("gw-ns/gw", _gateway(), "r", route, [_pod("a", True), _pod("b", True)]) == []


def test_an_unprogrammed_gateway_an_unclaimed_route_and_a_pending_pod_are_each_named() -> None:
    route = routing_route(B, "gw-ns/gw", S)
    problems = pending_problems("gw-ns/gw", _gateway("Unknown", None), "r", route, [_pod("a", True), _pod("b", False)])
    assert problems == [
        "Gateway gw-ns/gw not Programmed (Programmed=Unknown (Pending: Waiting for controller))",
        "Gateway gw-ns/gw has no address in its status",
        "HTTPRoute r not Accepted with ResolvedRefs by its Gateway (no parent status: no Gateway controller has "
        "taken it up)",
        "1/2 backend pods Ready (b: Unschedulable: 0/3 nodes are available)",
    ]
    refused = {**route, "status": {"parents": [{"conditions": [
        {"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"},
        {"type": "ResolvedRefs", "status": "True"}]}]}}
    assert pending_problems("gw-ns/gw", None, "r", refused, []) == [
        "Gateway gw-ns/gw not found",
        "HTTPRoute r not Accepted with ResolvedRefs by its Gateway (Accepted=False (NotAllowedByListeners))",
        "0/2 backend pods Ready"]


# -- the objects ---------------------------------------------------------------------------------------------
def _objects() -> list[dict[str, Any]]:
    return [backend_pod(B.a, "a", B.port_a, S), backend_pod(B.b, "b", B.port_b, S),
            backend_service(B.a, "a", B.port_a, S), backend_service(B.b, "b", B.port_b, S),
            routing_route(B, "gateway-system/inference", S)]


def test_backends_differ_in_name_and_port_and_are_stable_for_a_run() -> None:
    assert backends(RUN) == B
    assert B.a != B.b
    assert B.port_b == B.port_a + 1
    assert 20000 <= B.port_a < 40000
    assert backends("kaic-other-run") != B
    assert route_path(B) == f"/{B.a.removesuffix('-a')}"


def test_every_object_is_labelled_and_valid_for_kubernetes() -> None:
    for obj in _objects():
        assert obj["metadata"]["labels"][RUN_ID_LABEL] == RUN
        assert obj["metadata"]["labels"]["kaic.dev/probe"] == "gateway"
        assert validate(obj)[1] == [], obj["kind"]


def test_each_service_selects_only_its_own_backend_pod() -> None:
    pod_a, pod_b, svc_a, svc_b, _ = _objects()
    for svc, mine, other in ((svc_a, pod_a, pod_b), (svc_b, pod_b, pod_a)):
        sel = svc["spec"]["selector"]
        assert all(mine["metadata"]["labels"].get(k) == v for k, v in sel.items())
        assert not all(other["metadata"]["labels"].get(k) == v for k, v in sel.items())
        port = mine["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert svc["spec"]["ports"][0]["targetPort"] == port
    assert pod_a["spec"]["containers"][0]["command"] == ["python", "-m", "kaic.whoami", "--name", B.a, "--port",
                                                         str(B.port_a)]
    assert pod_a["spec"]["tolerations"] == [dict(S.tolerations[0])]
    assert "nodeSelector" not in pod_a["spec"]  # no accelerator needed


def test_the_route_declares_the_header_match_then_the_weighted_split() -> None:
    route = routing_route(B, "gateway-system/inference", S)
    header_rule, split_rule = route["spec"]["rules"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "inference", "namespace": "gateway-system"}]
    assert header_rule["matches"][0]["headers"] == [{"type": "Exact", "name": ROUTE_HEADER, "value": "b"}]
    assert [(b["name"], b.get("weight")) for b in header_rule["backendRefs"]] == [(B.b, None)]
    assert [(b["name"], b["port"], b["weight"]) for b in split_rule["backendRefs"]] == [
        (B.a, B.port_a, 80), (B.b, B.port_b, 20)]
    assert {m["path"]["value"] for r in (header_rule, split_rule) for m in r["matches"]} == {route_path(B)}


def _gomodcache() -> Path:
    env = os.environ.get("GOMODCACHE") or (Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg" / "mod")
    return Path(env)


@functools.cache
def _route_schema() -> Any:
    import jsonschema

    crd = _gomodcache() / GATEWAY_API / "config" / "crd" / "standard" / "gateway.networking.k8s.io_httproutes.yaml"
    if not crd.is_file():
        pytest.skip(f"{crd} is absent: the Go module cache has no {GATEWAY_API} (make cluster downloads it)")
    doc = yaml.safe_load(crd.read_text())
    version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def test_the_route_matches_the_gateway_api_crd_schema() -> None:
    route = routing_route(B, "gateway-system/inference", S)
    schema = _route_schema()
    assert [e.message for e in schema.iter_errors(route)] == []
    route["spec"]["rules"][0]["matches"][0]["headers"][0]["type"] = "Contains"  # no such match type
    route["spec"]["rules"][1]["backendRefs"][0]["weight"] = 2_000_000
    assert len(list(schema.iter_errors(route))) == 2


# -- the backend, over real HTTP -----------------------------------------------------------------------------
@pytest.fixture
def served() -> Iterator[str]:
    server = whoami.make_server("kaic-backend-a", 0, "127.0.0.1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_backend_answers_its_name_on_any_path(served: str) -> None:
    assert fetch_http(f"{served}{route_path(B)}/7", {ROUTE_HEADER: "b"}, 5) == "kaic-backend-a"
    assert fetch_http(f"{served}/", {}, 5) == "kaic-backend-a"


def test_fetch_raises_when_nothing_answers() -> None:
    from kaic.devcluster.processes import free_port

    with pytest.raises(ConnectionRefusedError):
        fetch_http(f"http://127.0.0.1:{free_port()}/x", {}, 5)  # a free port: nothing listens


def test_the_module_runs_as_the_pod_runs_it(tmp_path: Path) -> None:
    """`python -m kaic.whoami` as a process: it listens, answers its name, and refuses a bad port (exit 2)."""
    from kaic.devcluster.processes import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kaic.whoami", "--name", "b-side", "--port", str(port),
                             "--host", "127.0.0.1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"kaic.whoami: b-side listening on 127.0.0.1:{port}"
        assert fetch_http(f"http://127.0.0.1:{port}/anything", {}, 5) == "b-side"
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([sys.executable, "-m", "kaic.whoami", "--name", "x", "--port", "70000"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "--port 70000" in bad.stderr
    assert "Traceback" not in bad.stderr
