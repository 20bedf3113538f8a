"""KubeCluster (the real `kubernetes` ApiClient underneath) against a real local HTTP server that
answers like an API server: retries on 429/503 with Retry-After, bounded attempts, 404 as absent,
pagination, legacy discovery, server-side apply."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kaic.cluster import ClusterClient, ClusterError
from kaic.cluster.kube import KubeCluster
from kaic.cluster.retry import RetryPolicy

pytestmark = pytest.mark.integration

Handler = Callable[[str, str, bytes, dict[str, str]], tuple[int, dict[str, str], Any]]


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, bytes, str]] = []
        self.routes: dict[tuple[str, str], list[tuple[int, dict[str, str], Any]]] = {}

    def script(self, method: str, path: str, *responses: tuple[int, dict[str, str], Any]) -> None:
        """Answers for METHOD path(+query), in order; the last one repeats."""
        self.routes[(method, path)] = list(responses)

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], Any]:
        queue = self.routes.get((method, path)) or self.routes.get((method, path.split("?")[0]))
        if not queue:
            return 404, {}, {"kind": "Status", "message": f"{path} not found", "code": 404}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def server() -> Iterator[tuple[Server, str]]:
    state = Server()

    class H(BaseHTTPRequestHandler):
        def _do(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            state.requests.append((self.command, self.path))
            state.bodies.append((self.path, body, self.headers.get("Content-Type", "")))
            status, headers, payload = state.answer(self.command, self.path)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _do  # noqa: N815 (http.server's method names)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _client(url: str, sleeps: list[float], attempts: int = 4) -> KubeCluster:
    return KubeCluster.for_host(url, token="t0k3n", policy=RetryPolicy(attempts=attempts, base_s=0.01, cap_s=0.02),
                                sleep=sleeps.append)


VERSION = {"major": "1", "minor": "35", "gitVersion": "v1.35.1"}


def test_retries_429_and_503_then_succeeds_honouring_retry_after(server: tuple[Server, str]) -> None:
    state, url = server
    state.script("GET", "/version", (429, {"Retry-After": "2"}, {"code": 429}), (503, {}, {"code": 503}),
                 (200, {}, VERSION))
    sleeps: list[float] = []
    kc = _client(url, sleeps)
    assert isinstance(kc, ClusterClient)
    assert kc.version()["gitVersion"] == "v1.35.1"
    assert [r for r in state.requests if r[1] == "/version"] == [("GET", "/version")] * 3
    assert len(sleeps) == 2
    assert sleeps[0] == 2.0  # Retry-After is a floor over the (tiny) jittered backoff
    assert 0 <= sleeps[1] <= 0.02


def test_attempts_are_bounded(server: tuple[Server, str]) -> None:
    state, url = server
    state.script("GET", "/version", (503, {}, {"code": 503}))
    sleeps: list[float] = []
    with pytest.raises(ClusterError, match="gave up after 3 attempts") as err:
        _client(url, sleeps, attempts=3).version()
    assert err.value.status == 503
    assert len(state.requests) == 3
    assert len(sleeps) == 2


def test_connection_refused_is_retried_then_reported(server: tuple[Server, str]) -> None:
    _, _url = server
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(ClusterError, match="gave up after 2 attempts"):
        _client(f"http://127.0.0.1:{port}", sleeps, attempts=2).version()
    assert len(sleeps) == 1


def test_create_is_not_retried_on_500(server: tuple[Server, str]) -> None:
    state, url = server
    state.script("GET", "/api", (200, {}, {"kind": "APIVersions", "versions": ["v1"]}))
    state.script("GET", "/apis", (200, {}, {"kind": "APIGroupList", "groups": []}))
    state.script("GET", "/api/v1", (200, {}, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "kind": "Pod", "namespaced": True}, {"name": "pods/log", "kind": "Pod", "namespaced": True}]}))
    state.script("POST", "/api/v1/namespaces/kaic/pods", (500, {}, {"message": "boom"}))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kaic"}}
    with pytest.raises(ClusterError, match="HTTP 500: boom"):
        _client(url, []).create(pod)
    assert state.requests.count(("POST", "/api/v1/namespaces/kaic/pods")) == 1


def test_reads_discovery_pagination_absent_and_apply(server: tuple[Server, str]) -> None:
    state, url = server
    state.script("GET", "/api", (200, {}, {"kind": "APIVersions", "versions": ["v1"]}))
    state.script("GET", "/apis", (200, {}, {"kind": "APIGroupList", "groups": [
        {"name": "resource.k8s.io", "versions": [{"groupVersion": "resource.k8s.io/v1", "version": "v1"}]},
        {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}]}]}))
    state.script("GET", "/api/v1", (200, {}, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "nodes", "kind": "Node", "namespaced": False}]}))
    state.script("GET", "/apis/resource.k8s.io/v1", (200, {}, {
        "kind": "APIResourceList", "groupVersion": "resource.k8s.io/v1",
        "resources": [{"name": "deviceclasses", "kind": "DeviceClass", "namespaced": False}]}))
    state.script("GET", "/apis/metrics.k8s.io/v1beta1", (503, {}, {"message": "service unavailable"}))
    state.script("GET", "/api/v1/nodes?limit=500", (200, {}, {
        "kind": "NodeList", "apiVersion": "v1", "metadata": {"continue": "abc"},
        "items": [{"metadata": {"name": "a"}}]}))
    state.script("GET", "/api/v1/nodes?limit=500&continue=abc", (200, {}, {
        "kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [{"metadata": {"name": "b"}}]}))
    state.script("PATCH", "/apis/resource.k8s.io/v1/deviceclasses/x?fieldManager=kaic&force=true",
                 (200, {}, {"kind": "DeviceClass", "metadata": {"name": "x"}}))
    kc = _client(url, [])
    kinds = {(r.group_version, r.kind) for r in kc.api_resources()}
    assert kinds == {("v1", "Node"), ("resource.k8s.io/v1", "DeviceClass")}
    assert "metrics.k8s.io/v1beta1" in kc.discovery_errors  # an unavailable aggregated API is not fatal
    nodes = kc.list("v1", "nodes")
    assert [n["metadata"]["name"] for n in nodes] == ["a", "b"]
    assert nodes[0]["kind"] == "Node"
    assert kc.get("v1", "nodes", "missing") is None
    assert kc.list("kueue.x-k8s.io/v1beta1", "workloads") == []  # a type that is not served
    kc.delete("v1", "pods", "gone", "kaic")  # idempotent: 404 is fine
    out = kc.apply({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "x"}})
    assert out["metadata"]["name"] == "x"
    _path, body, ctype = state.bodies[-1]
    assert ctype == "application/apply-patch+yaml"
    assert json.loads(body)["metadata"]["name"] == "x"
    assert any(h == ("GET", "/version") for h in state.requests) is False
