"""ACTIVE probe of `ai_inference` (its test plan): an HTTPRoute splits and matches real requests as declared.

Two backend pods (kaic's image running `kaic.whoami`, each answering its own name, on different ports since on
some clusters pods share the host network), a Service for each, and an HTTPRoute on the profile's Gateway
(`serving.gateway`) under a path of its own: rule 1 sends requests carrying `x-kaic-route: b` to B only, rule 2
splits the rest A/B by weight (80/20). Once the route is Accepted with its refs resolved, the Gateway Programmed
with an address and both pods Ready, requests go through the Gateway from where kaic runs. Passed only when
every header request was answered by B, the unheaded requests saw both backends and B's share lies within a
4-sigma binomial band around the declared weight; that share is recorded (`gateway_split_b_fraction`).
An Accepted route or a Gateway with an address is presence, not routing: neither counts on its own.

`backend_pod`, `backend_service`, `routing_route`, `pending_problems`, `split_band` and `judge_routing` are pure;
`GatewayRouting` creates the objects through a ClusterClient, waits with the profile's deadline and always
deletes what it created (run-id and probe labels).
"""

from __future__ import annotations

import http.client
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kaic.cluster import (
    ClusterClient,
    DeadlineExceededError,
    Obj,
    condition_true,
    conditions,
    labelled,
    phase,
    run_selector,
    wait_until,
)
from kaic.podsecurity import container_security, pod_security
from kaic.results import Outcome, Status
from steps.provision.active import PROBE_LABEL, PodSettings, pending_reason
from steps.provision.active_platform import Clock, run_suffix
from steps.serve.isvc import (
    ROUTE_GROUP_VERSION,
    ROUTE_PLURAL,
    gateway_address,
    gateway_parent_ref,
    parse_gateway_ref,
    route_accepted,
)

CHECK = "provision.gateway_routing"
METRIC = "gateway_split_b_fraction"
PROBE = "gateway"
BACKEND_LABEL = "kaic.dev/backend"
ROUTE_HEADER = "x-kaic-route"
WEIGHTS = (80, 20)  # declared A/B split of the unheaded requests
SIGMAS = 4.0  # the band around the declared weight: a correct split falls outside it about once in 16,000 runs
REQUEST_TIMEOUT_S = 10.0

# (url, headers, timeout_s) -> the answer's body; raises OSError (or http.client.HTTPException) when none came
Fetch = Callable[[str, Mapping[str, str], float], str]


@dataclass(frozen=True)
class Backends:
    """The two backends' names (each answers its own) and ports."""

    a: str
    b: str
    port_a: int
    port_b: int


def backends(run_id: str) -> Backends:
    """Names from the run id; two adjacent ports in 20000-39999 picked by it (stable for a run, spread across
    runs, so two runs sharing a host network do not collide)."""
    prefix = f"kaic-{run_suffix(run_id)}-{PROBE}"
    port = 20000 + 2 * (zlib.crc32(run_id.encode()) % 10000)
    return Backends(f"{prefix}-a", f"{prefix}-b", port, port + 1)


def _labels(which: str) -> dict[str, str]:
    return {PROBE_LABEL: PROBE, BACKEND_LABEL: which}


def backend_pod(name: str, which: str, port: int, s: PodSettings) -> Obj:
    """A pod running `python -m kaic.whoami` on `port`, Ready once it answers; the profile's tolerations (it needs
    no accelerator, so no node selector)."""
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": s.namespace, "labels": _labels(which)},
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "containers": [{
                "name": "backend", "image": s.image,
                "command": ["python", "-m", "kaic.whoami", "--name", name, "--port", str(port)],
                "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": container_security(),
            }],
        },
    }
    if s.tolerations:
        pod["spec"]["tolerations"] = [dict(t) for t in s.tolerations]
    return labelled(pod, s.run_id)


def backend_service(name: str, which: str, port: int, s: PodSettings) -> Obj:
    """A Service selecting that one backend's pod (its run id, probe and backend labels)."""
    return labelled({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": s.namespace, "labels": _labels(which)},
        "spec": {"selector": {**_labels(which), "kaic.dev/run-id": s.run_id},
                 "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }, s.run_id)


def route_path(b: Backends) -> str:
    """The route's own path prefix, so it never takes the Gateway's other traffic."""
    return "/" + b.a.removesuffix("-a")


def routing_route(b: Backends, gateway: str, s: PodSettings, weights: tuple[int, int] = WEIGHTS) -> Obj:
    """Rule 1: the path with header x-kaic-route: b -> B only. Rule 2: the path -> A and B by `weights`.
    (Gateway API gives the rule with more header matches precedence over an equal path match.)"""
    def path() -> dict[str, str]:
        return {"type": "PathPrefix", "value": route_path(b)}

    return labelled({
        "apiVersion": ROUTE_GROUP_VERSION, "kind": "HTTPRoute",
        "metadata": {"name": b.a.removesuffix("-a"), "namespace": s.namespace, "labels": {PROBE_LABEL: PROBE}},
        "spec": {
            "parentRefs": [gateway_parent_ref(gateway, s.namespace)],
            "rules": [
                {"matches": [{"path": path(), "headers": [{"type": "Exact", "name": ROUTE_HEADER, "value": "b"}]}],
                 "backendRefs": [{"kind": "Service", "name": b.b, "port": b.port_b}]},
                {"matches": [{"path": path()}],
                 "backendRefs": [{"kind": "Service", "name": b.a, "port": b.port_a, "weight": weights[0]},
                                 {"kind": "Service", "name": b.b, "port": b.port_b, "weight": weights[1]}]},
            ],
        },
    }, s.run_id)


# -- what was observed, and what it means -----------------------------------------------------------------
def _said(c: Obj) -> str:
    why = ": ".join(str(x) for x in (c.get("reason"), c.get("message")) if x)
    return f"{c.get('type')}={c.get('status')}" + (f" ({why})" if why else "")


def gateway_programmed(gw: Obj | None) -> bool:
    return (conditions(gw).get("Programmed") or {}).get("status") == "True"


def _pod_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and condition_true(pod, "Ready")


def pending_problems(gateway: str, gw: Obj | None, route_name: str, route: Obj | None, pods: list[Obj],
                     expected_pods: int = 2) -> list[str]:
    """What still stands between the objects and a request through the Gateway (empty: nothing)."""
    out = []
    if gw is None:
        out.append(f"Gateway {gateway} not found")
    else:
        if not gateway_programmed(gw):
            cond = conditions(gw).get("Programmed")
            out.append(f"Gateway {gateway} not Programmed ({_said(cond) if cond else 'no Programmed condition'})")
        if gateway_address(gw) is None:
            out.append(f"Gateway {gateway} has no address in its status")
    if not route_accepted(route):
        parents = ((route or {}).get("status") or {}).get("parents") or []
        said = "; ".join(_said(c) for p in parents for c in p.get("conditions") or [] if c.get("status") != "True")
        out.append(f"HTTPRoute {route_name} not Accepted with ResolvedRefs by its Gateway ("
                   f"{said or 'no parent status: no Gateway controller has taken it up'})")
    ready = [p for p in pods if _pod_ready(p)]
    if len(ready) < expected_pods:
        waiting = [f"{(p.get('metadata') or {}).get('name')}: {pending_reason(p)}" for p in pods if not _pod_ready(p)]
        out.append(f"{len(ready)}/{expected_pods} backend pods Ready" + (f" ({'; '.join(waiting)})" if waiting else ""))
    return out


@dataclass(frozen=True)
class Tally:
    """Answers to one kind of request: by A, by B, and none (an error, or neither backend's name)."""

    a: int = 0
    b: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.a + self.b + self.other

    def add(self, answer: str | None, names: Backends) -> Tally:
        return Tally(self.a + (answer == names.a), self.b + (answer == names.b),
                     self.other + (answer not in (names.a, names.b)))


@dataclass(frozen=True)
class RouteSeen:
    weights: tuple[int, int]  # declared A/B
    plain: Tally  # requests without the header
    header: Tally  # requests with x-kaic-route: b
    sigmas: float = SIGMAS
    sample_error: str = ""  # one answer that was neither backend, as seen

    @property
    def fraction_b(self) -> float | None:
        return self.plain.b / self.plain.total if self.plain.total else None


def split_band(n: int, p: float, sigmas: float = SIGMAS) -> tuple[float, float]:
    """The counts of B out of `n` within `sigmas` binomial standard deviations of the expected n*p."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return max(0.0, mean - sigmas * sd), min(float(n), mean + sigmas * sd)


def judge_routing(seen: RouteSeen) -> tuple[Status, str]:
    """Passed when every header request reached B, no request failed, both backends answered and B's share of
    the unheaded requests is within the band around its declared weight. Otherwise failed, with the counts."""
    wa, wb = seen.weights
    p = wb / (wa + wb)
    plain, header = seen.plain, seen.header
    lo, hi = split_band(plain.total, p, seen.sigmas)
    share = f"{plain.b}/{plain.total} ({plain.b / plain.total:.3f})" if plain.total else "0/0"
    declared = f"declared {wa}/{wb}: expected {plain.total * p:.1f}, {seen.sigmas:g}-sigma band {lo:.1f}-{hi:.1f}"
    problems = []
    if header.a or header.other or not header.total:
        problems.append(f"of {header.total} requests with {ROUTE_HEADER}: b, B answered {header.b}, A {header.a}, "
                        f"none {header.other}: the header match did not route as declared")
    if plain.other:
        problems.append(f"{plain.other}/{plain.total} requests without the header got no backend's answer")
    if plain.total and (not plain.a or not plain.b):
        problems.append(f"only {'B' if plain.b else 'A' if plain.a else 'no backend'} answered the requests "
                        f"without the header (A {plain.a}, B {plain.b}): no split")
    elif not lo <= plain.b <= hi:
        problems.append(f"B answered {share} of the requests without the header, outside the band ({declared})")
    if problems:
        sample = f"; e.g. {seen.sample_error}" if seen.sample_error else ""
        return Status.FAILED, "; ".join(problems) + sample
    return Status.PASSED, (f"all {header.total} requests with {ROUTE_HEADER}: b answered by B; without it B answered "
                           f"{share}, A {plain.a} ({declared})")


# -- the driver ---------------------------------------------------------------------------------------------
def fetch_http(url: str, headers: Mapping[str, str], timeout_s: float) -> str:
    """GET `url` on a fresh connection (no proxy): the body of a 200 answer; raises OSError otherwise."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout_s)
    try:
        conn.request("GET", parts.path or "/", headers=dict(headers))
        resp = conn.getresponse()
        body = resp.read(4096).decode(errors="replace")
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status} {resp.reason}: {body.strip()[:120]}")
        return body.strip()
    finally:
        conn.close()


class GatewayRouting:
    """Runs the probe; its pods, Services and HTTPRoute are deleted on the way out, whatever happens."""

    def __init__(self, client: ClusterClient, s: PodSettings, gateway: str, requests: int = 200,
                 header_requests: int = 20, clock: Clock | None = None, fetch: Fetch = fetch_http) -> None:
        self.client, self.s, self.clock, self.fetch = client, s, clock or Clock(), fetch
        self.gateway, self.requests, self.header_requests = gateway, requests, header_requests
        self.gw_ns, self.gw_name = parse_gateway_ref(gateway, s.namespace)
        self.names = backends(s.run_id)
        self.route = routing_route(self.names, gateway, s)
        self.route_name = self.route["metadata"]["name"]
        self.selector = f"{run_selector(s.run_id)},{PROBE_LABEL}={PROBE}"

    def objects(self) -> list[Obj]:
        b, s = self.names, self.s
        return [backend_pod(b.a, "a", b.port_a, s), backend_pod(b.b, "b", b.port_b, s),
                backend_service(b.a, "a", b.port_a, s), backend_service(b.b, "b", b.port_b, s), self.route]

    def _gateway(self) -> Obj | None:
        return self.client.get(ROUTE_GROUP_VERSION, "gateways", self.gw_name, self.gw_ns)

    def _problems(self) -> tuple[list[str], Obj | None]:
        gw = self._gateway()
        route = self.client.get(ROUTE_GROUP_VERSION, ROUTE_PLURAL, self.route_name, self.s.namespace)
        pods = self.client.list("v1", "pods", self.s.namespace, self.selector)
        return pending_problems(f"{self.gw_ns}/{self.gw_name}", gw, self.route_name, route, pods), gw

    def _cleanup(self) -> None:
        ns = self.s.namespace
        for gv, plural in ((ROUTE_GROUP_VERSION, ROUTE_PLURAL), ("v1", "services"), ("v1", "pods")):
            self.client.delete_collection(gv, plural, ns, self.selector)
        wait_until(lambda: not self.client.list("v1", "pods", ns, self.selector), self.s.timeout_s,
                   f"gateway probe pods ({self.selector}) to be deleted", self.clock.poll_s, self.clock.now,
                   self.clock.sleep)

    def _answer(self, url: str, headers: Mapping[str, str]) -> tuple[str | None, str]:
        """(the answer's body, '') or (None, what went wrong)."""
        try:
            return self.fetch(url, headers, REQUEST_TIMEOUT_S), ""
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _warm(self, url: str, host: Mapping[str, str], deadline_s: float) -> None:
        """Until one request with and one without the header reach a backend: a route is programmed into the data
        plane some time after it is Accepted."""
        last = [""]
        names = (self.names.a, self.names.b)

        def through() -> bool:
            answers = [self._answer(url, {**host, **extra}) for extra in ({}, {ROUTE_HEADER: "b"})]
            bad = [a if a is not None else why for a, why in answers if a not in names]
            last[0] = bad[0] if bad else ""
            return not bad

        try:
            wait_until(through, deadline_s, f"{url} to reach the backends", self.clock.poll_s, self.clock.now,
                       self.clock.sleep)
        except DeadlineExceededError as exc:
            raise _NotRoutedError(f"{exc} (last answer: {last[0]!r})") from None

    def _send(self, url: str, host: Mapping[str, str]) -> RouteSeen:
        plain, header, sample = Tally(), Tally(), ""
        for i in range(self.requests + self.header_requests):
            headed = i >= self.requests
            answer, why = self._answer(f"{url}/{i}", {**host, **({ROUTE_HEADER: "b"} if headed else {})})
            if answer not in (self.names.a, self.names.b) and not sample:
                sample = why or f"answer {answer!r}"
            if headed:
                header = header.add(answer, self.names)
            else:
                plain = plain.add(answer, self.names)
        return RouteSeen(WEIGHTS, plain, header, SIGMAS, sample)

    def run(self) -> Outcome:
        gateway = f"{self.gw_ns}/{self.gw_name}"
        if self._gateway() is None:
            return Outcome(CHECK, Status.FAILED, f"Gateway {gateway} (profile serving.gateway) not found")
        started = self.clock.now()
        problems: list[str] = []
        try:
            for obj in self.objects():
                self.client.create(obj)

            def settled() -> Obj | None:
                now, gw = self._problems()
                problems[:] = now
                return gw if not now else None

            try:
                gw = wait_until(settled, self.s.timeout_s, "the route, its Gateway and the backends",
                                self.clock.poll_s, self.clock.now, self.clock.sleep)
            except DeadlineExceededError:
                return Outcome(CHECK, Status.FAILED, f"not routable within {self.s.timeout_s:g}s: "
                               + "; ".join(problems), evidence=self._evidence(None))
            address = gateway_address(gw) or ""
            url = address + route_path(self.names)
            host = _host_header(gw)
            left = max(self.s.timeout_s - (self.clock.now() - started), self.clock.poll_s)
            try:
                self._warm(url, host, left)
            except _NotRoutedError as exc:
                return Outcome(CHECK, Status.FAILED, f"HTTPRoute {self.route_name} Accepted and Gateway {gateway} "
                               f"Programmed at {address}, but requests did not reach the backends: {exc}",
                               evidence=self._evidence(address))
            seen = self._send(url, host)
        finally:
            self._cleanup()
        status, message = judge_routing(seen)
        fraction = seen.fraction_b
        evidence = (f"{self._evidence(address)}; without the header: A {seen.plain.a}, B {seen.plain.b}, none "
                    f"{seen.plain.other}; with it: A {seen.header.a}, B {seen.header.b}, none {seen.header.other}")
        return Outcome(CHECK, status, message, metric=METRIC if fraction is not None else None,
                       value=round(fraction, 4) if fraction is not None else None,
                       unit="ratio" if fraction is not None else None, evidence=evidence)

    def _evidence(self, address: str | None) -> str:
        b = self.names
        at = f" at {address}" if address else ""
        return (f"Gateway {self.gw_ns}/{self.gw_name}{at}; HTTPRoute {self.s.namespace}/{self.route_name} "
                f"{route_path(b)}: {ROUTE_HEADER}: b -> {b.b}; else {b.a} {WEIGHTS[0]} / {b.b} {WEIGHTS[1]}")


class _NotRoutedError(Exception):
    pass


def _host_header(gw: Obj | None) -> dict[str, str]:
    """The Host a request needs when the Gateway's first HTTP listener names a hostname ('*.x' -> 'kaic.x')."""
    listener: Obj = next((li for li in ((gw or {}).get("spec") or {}).get("listeners") or []
                     if li.get("protocol") == "HTTP"), {})
    name = str(listener.get("hostname") or "")
    if not name:
        return {}
    return {"Host": "kaic" + name[1:] if name.startswith("*") else name}
