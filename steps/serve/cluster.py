"""Serving on a cluster: an InferenceService created through the cluster seam, waited on until its
Ready condition is True (Argo's successCondition cannot match a condition list, so the step waits
itself), then an HTTPRoute through the profile's Gateway where Gateway API is served, and the same
parity/load/metrics exercise as locally, against the predictor's cluster-local address (the step
runs in a pod of the workflow). Everything created carries the run-id label; teardown deletes it.

`serve.gateway_route` is kaic's own check (the model answered through the Gateway, parity and load included);
the CNCF `ai_inference` behaviour, a weighted split and a header match observed on real requests, is
`provision.gateway_routing` (steps/provision/active_gateway.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kaic.cluster import ClusterClient, DeadlineExceededError, Obj, wait_until
from kaic.profiles import Profile
from kaic.results import Outcome, Status
from steps.serve import isvc, prom
from steps.serve.exercise import Endpoint, LoadPlan, exercise, not_run
from steps.serve.export import ExportedModel

GATEWAY_CHECK = "serve.gateway_route"


@dataclass(frozen=True)
class ClusterServing:
    namespace: str
    run_id: str
    storage_uri: str
    ready_timeout_s: float
    deployment_mode: str
    workers: int
    threads: int
    route_timeout_s: float = 120.0
    poll_s: float = 2.0


def serve_on_cluster(
    client: ClusterClient,
    model: ExportedModel,
    plan: LoadPlan,
    cfg: ClusterServing,
    profile: Profile,
    log: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    name = isvc.isvc_name(cfg.run_id, model.name)
    ns = cfg.namespace
    obj = isvc.build_inference_service(
        isvc.IsvcSpec(
            name,
            ns,
            cfg.run_id,
            model.name,
            cfg.storage_uri,
            profile.image,
            cfg.deployment_mode,
            cfg.workers,
            cfg.threads,
        ),
        profile,
    )
    started = clock()
    client.apply(obj)
    log(f"InferenceService {ns}/{name} applied (model {cfg.storage_uri})")

    def ready() -> Obj | None:
        o = client.get(isvc.ISVC_GROUP_VERSION, isvc.ISVC_PLURAL, name, ns)
        return o if isvc.isvc_ready(o) else None

    try:
        live = wait_until(
            ready, cfg.ready_timeout_s, f"InferenceService {ns}/{name} Ready", cfg.poll_s, clock, sleep
        )
    except DeadlineExceededError as exc:
        last = client.get(isvc.ISVC_GROUP_VERSION, isvc.ISVC_PLURAL, name, ns)
        return [
            Outcome("serve.ready", Status.FAILED, f"{exc}: {isvc.isvc_not_ready_reason(last)}"),
            Outcome.skipped(GATEWAY_CHECK, "the InferenceService never became Ready"),
            *not_run("the InferenceService never became Ready"),
        ]
    ready_s = clock() - started
    direct = Endpoint.from_url(isvc.isvc_internal_url(live, ns), remote=True)
    out = [
        Outcome(
            "serve.ready",
            Status.PASSED,
            f"InferenceService {ns}/{name} Ready; predictor at {direct.base_url}",
            metric="serve_time_to_ready_s",
            value=ready_s,
            unit="s",
        )
    ]
    route, via = gateway_route(client, name, model.name, cfg, profile, log, clock, sleep)
    checks = exercise(via or direct, direct, model, plan, log)
    out += checks
    out.append(prom.collection_outcome(checks, profile.serving.prometheus_url, model.name, ns,
                                       profile.serving.metrics_collect_timeout_s))
    out.append(route if via is None else judge_route(route, checks))
    return out


def gateway_api_served(client: ClusterClient) -> bool:
    return any(
        r.group == "gateway.networking.k8s.io" and r.kind == "HTTPRoute" for r in client.api_resources()
    )


def gateway_route(
    client: ClusterClient,
    name: str,
    model: str,
    cfg: ClusterServing,
    profile: Profile,
    log: Callable[[str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[Outcome, Endpoint | None]:
    """(outcome so far, gateway endpoint to send the load through, or None when there is no route)."""
    ref = profile.serving.gateway
    if not ref:
        return Outcome.skipped(
            GATEWAY_CHECK, "profile sets no serving.gateway to attach an HTTPRoute to"
        ), None
    if not gateway_api_served(client):
        return Outcome.skipped(
            GATEWAY_CHECK, "Gateway API (gateway.networking.k8s.io HTTPRoute) is not served"
        ), None
    gw_ns, gw_name = isvc.parse_gateway_ref(ref, cfg.namespace)
    gw = client.get(isvc.ROUTE_GROUP_VERSION, "gateways", gw_name, gw_ns)
    if gw is None:
        return Outcome(
            GATEWAY_CHECK, Status.FAILED, f"Gateway {gw_ns}/{gw_name} (profile serving.gateway) not found"
        ), None
    address = isvc.gateway_address(gw)
    if address is None:
        return Outcome(
            GATEWAY_CHECK, Status.FAILED, f"Gateway {gw_ns}/{gw_name} has no address in its status"
        ), None
    route = isvc.build_http_route(name, cfg.namespace, cfg.run_id, ref, model)
    route_name = route["metadata"]["name"]
    client.apply(route)

    def accepted() -> bool:
        return isvc.route_accepted(
            client.get(isvc.ROUTE_GROUP_VERSION, isvc.ROUTE_PLURAL, route_name, cfg.namespace)
        )

    try:
        wait_until(
            accepted,
            cfg.route_timeout_s,
            f"HTTPRoute {cfg.namespace}/{route_name} Accepted",
            cfg.poll_s,
            clock,
            sleep,
        )
    except DeadlineExceededError as exc:
        return Outcome(GATEWAY_CHECK, Status.FAILED, str(exc)), None
    log(f"HTTPRoute {cfg.namespace}/{route_name} accepted by Gateway {gw_ns}/{gw_name} at {address}")
    return (
        Outcome(
            GATEWAY_CHECK,
            Status.PASSED,
            f"HTTPRoute {cfg.namespace}/{route_name} on Gateway {gw_ns}/{gw_name} ({address}) to "
            f"{isvc.predictor_service(name)}",
            evidence=f"{isvc.ROUTE_PLURAL}/{route_name}",
        ),
        Endpoint.from_url(address, remote=True),
    )


def judge_route(route: Outcome, checks: list[Outcome]) -> Outcome:
    """The route passes when parity and the load through it both passed with successful requests."""
    if route.status is not Status.PASSED:
        return route
    parity = next((o for o in checks if o.check_id == "serve.prediction_parity"), None)
    errors = next((o for o in checks if o.check_id == "serve.error_rate"), None)
    rps = [o.value for o in checks if o.check_id == "serve.throughput" and o.value]
    ok = (
        parity is not None
        and parity.status is Status.PASSED
        and errors is not None
        and errors.value == 0.0
        and bool(rps)
    )
    detail = (
        f"; parity {parity.status.value if parity else 'not run'}, error rate "
        f"{errors.value if errors else 'not measured'} through the gateway"
    )
    return Outcome(
        GATEWAY_CHECK, Status.PASSED if ok else Status.FAILED, route.message + detail, evidence=route.evidence
    )
