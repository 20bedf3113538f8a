"""The `provision` step: fingerprint the platform and evaluate the requirement probes.

Three modes, chosen from the flags and the profile:
- `local` (profile `local`, no snapshot): this machine (OS, CPU, memory, GPUs via NVML or nvidia-smi);
  every Kubernetes probe is skipped with the reason.
- `snapshot` (`--cluster-snapshot DIR`): the READ probes over a dump folder (`kaic snapshot`), offline.
- `cluster`: the live API server (in-cluster or a kubeconfig): fingerprint, READ probes for all 16 ids,
  and the ACTIVE probes the profile enables (`probes.active`, `probes.gang_scheduling`, `probes.gateway_routing`...).

Writes `runs/<run-id>/provision/fingerprint.json` to the object store (what teardown compares with).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from kaic import catalog
from kaic.errors import ConfigError
from kaic.profiles import ExporterProbe, HpaProbe, Profile
from kaic.results import Outcome, Status
from kaic.stepkit import StepConfig, StepContext, parse_config

NAME = "provision"
NO_CLUSTER = "no Kubernetes cluster (local platform)"


class Config(StepConfig):
    mode: Literal["local", "snapshot", "cluster"]
    cluster_snapshot: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    cluster_name: str = ""
    active: bool = False
    gang_scheduling: bool = False
    gang_scheduler: Literal["auto", "kueue", "volcano", "kai"] = "auto"
    gang_queue: str | None = None
    gang_observe_s: float = 30.0
    output_wait_s: float = 30.0
    namespace: str = "kaic"
    image: str = ""
    resource_name: str = "nvidia.com/gpu"
    per_worker: int = 0
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    timeout_s: float = 300.0
    not_applicable: dict[str, str] = Field(default_factory=dict)  # conditional CNCF id -> justification
    operator_webhook: bool = False
    operators: tuple[str, ...] | None = None  # probes.operators: which to probe, in order (None: all)
    dra_claims: bool = False
    dra_device_class: str | None = None
    node_autoscaling: bool = False
    autoscaling_pool: dict[str, str] = Field(default_factory=dict)
    scale_up_timeout_s: float = 900.0
    scale_down_timeout_s: float = 1800.0
    exporter_scrape: bool = False
    exporter: ExporterProbe = Field(default_factory=ExporterProbe)
    gateway_routing: bool = False
    gateway: str | None = None  # the profile's serving.gateway ("ns/name" or "name")
    gateway_requests: int = 200
    gateway_header_requests: int = 20
    pod_autoscaling: bool = False
    hpa: HpaProbe = HpaProbe()
    suite: Literal["quick", "full"] = "quick"

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.mode == "snapshot" and not self.cluster_snapshot:
            raise ValueError("snapshot mode needs cluster_snapshot")
        if self.active and self.gang_scheduling and not self.gang_queue and self.gang_scheduler != "volcano":
            raise ValueError("probes.gang_scheduling needs probes.gang_queue (a Kueue LocalQueue or a KAI queue; "
                             "Volcano's defaults to `default`)")
        return self


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("provision")
    g.add_argument("--cluster-snapshot", metavar="DIR", help="evaluate the READ probes offline from a snapshot "
                   "folder (kaic snapshot)")
    g.add_argument("--kubeconfig", help="kubeconfig file (default: the profile's, then $KUBECONFIG / ~/.kube/config)")
    g.add_argument("--context", help="kubeconfig context (default: the profile's, then the current one)")
    g.add_argument("--no-active", action="store_true", help="skip the ACTIVE probes even where the profile enables "
                   "them")


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    snapshot = getattr(args, "cluster_snapshot", None)
    if snapshot and not Path(snapshot).is_dir():
        raise ConfigError(f"--cluster-snapshot {snapshot}: not a directory")
    k = profile.kubernetes
    mode = "snapshot" if snapshot else "local" if profile.is_local else "cluster"
    values = {
        "mode": mode, "cluster_snapshot": snapshot,
        "kubeconfig": getattr(args, "kubeconfig", None) or k.kubeconfig,
        "context": getattr(args, "context", None) or k.context,
        "in_cluster": k.in_cluster and not getattr(args, "kubeconfig", None),
        "cluster_name": profile.cluster or (getattr(args, "context", None) or k.context or ""),
        "active": profile.probes.active and not getattr(args, "no_active", False),
        "gang_scheduling": profile.probes.gang_scheduling, "gang_scheduler": profile.probes.gang_scheduler,
        "gang_queue": profile.probes.gang_queue,
        "gang_observe_s": profile.probes.gang_observe_s, "output_wait_s": profile.probes.output_wait_s,
        "namespace": k.namespace, "image": profile.image, "resource_name": profile.accelerator.resource_name,
        "per_worker": profile.accelerator.per_worker, "node_selector": dict(profile.accelerator.node_selector),
        "tolerations": tuple(t.model_dump(exclude_none=True) for t in profile.accelerator.tolerations),
        "timeout_s": profile.probes.timeout_s, "not_applicable": dict(profile.not_applicable),
        "operator_webhook": profile.probes.operator_webhook, "operators": profile.probes.operators,
        "dra_claims": profile.probes.dra_claims,
        "dra_device_class": profile.probes.dra_device_class,
        "node_autoscaling": profile.probes.node_autoscaling,
        "autoscaling_pool": dict(profile.probes.autoscaling_pool or profile.accelerator.node_selector),
        "scale_up_timeout_s": profile.probes.scale_up_timeout_s,
        "scale_down_timeout_s": profile.probes.scale_down_timeout_s,
        "exporter_scrape": profile.probes.exporter_scrape, "exporter": profile.probes.exporter,
        "gateway_routing": profile.probes.gateway_routing, "gateway": profile.serving.gateway,
        "gateway_requests": profile.probes.gateway_requests,
        "gateway_header_requests": profile.probes.gateway_header_requests,
        "pod_autoscaling": profile.probes.pod_autoscaling, "hpa": profile.probes.hpa,
        "suite": getattr(args, "suite", None) or "quick",
    }
    return parse_config(Config, values, f"profile {profile.name}")


READ_CHECKS = tuple(c.check_id for c in catalog.CHECKS.values()
                    if c.step == NAME and c.probe in (catalog.Probe.READ, catalog.Probe.ATTEST) and c.requirement_id)
ACTIVE_CHECKS = tuple(c.check_id for c in catalog.CHECKS.values() if c.step == NAME and c.probe is catalog.Probe.ACTIVE)


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    from steps.provision import fingerprint

    if config.mode == "local":
        from kaic.hardware.host import fingerprint as host_fingerprint

        fp = fingerprint.local(host_fingerprint())
        probes = [Outcome.skipped(c, NO_CLUSTER) for c in READ_CHECKS + ACTIVE_CHECKS]
        return _finish(ctx, fp, not_applicable(probes, config.not_applicable))
    from steps.provision.read_probes import evaluate
    from steps.provision.view import gather

    client, source = _client(config)
    view = gather(client, source)
    fp = fingerprint.cluster(view, config.cluster_name or _default_name(view))
    outcomes = evaluate(view)
    if config.mode == "snapshot":
        outcomes += [Outcome.skipped(c, "offline snapshot: active probes need a live cluster") for c in ACTIVE_CHECKS]
    else:
        outcomes += _active(config, ctx, client, view)
    return _finish(ctx, fp, not_applicable(outcomes, config.not_applicable))


def not_applicable(outcomes: list[Outcome], declared: dict[str, str]) -> list[Outcome]:
    """The profile's N/A declarations replace the probes of those (conditional) requirements: one N/A row each
    with the justification; the other rows of that requirement are not reported."""
    from kaic.catalog import evidence

    out, done = [], set()
    for o in outcomes:
        rid = catalog.check(o.check_id).requirement_id
        if rid in declared:
            if rid not in done:
                out.append(evidence.not_applicable(o.check_id, declared[rid]))
                done.add(rid)
            continue
        out.append(o)
    return out


def _client(config: Config) -> tuple[Any, str]:
    from kaic.cluster import connect
    from kaic.cluster.snapshot import SnapshotCluster

    if config.mode == "snapshot":
        assert config.cluster_snapshot is not None
        return SnapshotCluster(config.cluster_snapshot), f"snapshot {config.cluster_snapshot}"
    client = connect(config.kubeconfig, config.context, config.in_cluster)
    return client, "cluster " + ("(in-cluster)" if config.in_cluster else config.context or "(current context)")


def _default_name(view: Any) -> str:
    nodes = view.nodes()
    return f"{nodes[0].provider}-cluster" if nodes else "cluster"


def _finish(ctx: StepContext, fp: Any, probes: list[Outcome]) -> list[Outcome]:
    ctx.set_fingerprint(cluster=fp.cluster, k8s_version=fp.k8s_version, accelerator=fp.accelerator)
    ctx.store.put_bytes(ctx.key("provision", "fingerprint.json"), json.dumps(fp.document, indent=1).encode())
    ctx.log(f"fingerprint: {fp.cluster} · k8s {fp.k8s_version or '-'} · {fp.accelerator}")
    return [*fp.outcomes, *probes]


# ACTIVE checks kaic does not run yet: what the test plan needs, said in the row (never passed).
NOT_AUTOMATED: dict[str, str] = {
    "provision.driver_match": "the accelerator pod did not run (it reads the driver with nvidia-smi)",
    "provision.claim_isolation": "DRA isolation probe not run: it needs probes.dra_claims and a DeviceClass",
}


def _active(config: Config, ctx: StepContext, client: Any, view: Any) -> list[Outcome]:
    """One row per ACTIVE check: run where the profile enables it and the cluster can show it, else skipped
    with the reason."""
    from steps.provision.active import ActiveProbes, PodSettings, judge_driver
    from steps.provision.active_operator import OperatorWebhook
    from steps.provision.active_platform import DraAllocation, DraIsolation
    from steps.provision.read_accelerators import advertised_drivers

    if not config.active:
        why = "active probes disabled (profile probes.active: false, or --no-active)"
        return [Outcome.skipped(c, why) for c in ACTIVE_CHECKS]
    available = _available(view, config)
    settings = PodSettings(config.namespace, config.image, ctx.run.run_id, config.resource_name,
                           config.node_selector, config.tolerations, config.timeout_s, config.gang_observe_s,
                           config.gang_queue, config.output_wait_s)
    out: dict[str, Outcome] = {}
    device_skip = None
    if config.per_worker == 0:
        device_skip = "the profile requests no accelerators (accelerator.per_worker: 0)"
    elif "/" not in config.resource_name:
        device_skip = (f"accelerator.resource_name {config.resource_name!r} is a DRA DeviceClass: the extended-"
                       "resource device probes do not apply (see provision.dra_allocation)")
    elif available == 0:
        device_skip = f"no node advertises allocatable {config.resource_name}"
    if device_skip:
        for c in ("provision.accelerator_pod", "provision.no_request_no_device", "provision.device_isolation",
                  "provision.gang_admission"):
            out[c] = Outcome.skipped(c, device_skip)
    else:
        probes = ActiveProbes(client, settings)
        out["provision.accelerator_pod"] = _guard("provision.accelerator_pod", probes.accelerator_pod)
        out["provision.driver_match"] = judge_driver(probes.accelerator_seen, advertised_drivers(view))
        out["provision.no_request_no_device"] = _guard("provision.no_request_no_device", probes.no_request_no_device)
        out["provision.device_isolation"] = _guard("provision.device_isolation",
                                                   lambda: probes.device_isolation(available))
        if not config.gang_scheduling:
            out["provision.gang_admission"] = Outcome.skipped(
                "provision.gang_admission", "gang scheduling probe disabled (profile probes.gang_scheduling: false)")
        else:
            out["provision.gang_admission"] = _gang(client, settings, config.gang_scheduler, available)
    device_class = config.dra_device_class or (config.resource_name if "/" not in config.resource_name else None)
    if not config.dra_claims:
        out["provision.dra_allocation"] = Outcome.skipped("provision.dra_allocation",
                                                          "DRA probe disabled (profile probes.dra_claims: false)")
    elif not device_class:
        out["provision.dra_allocation"] = Outcome.skipped("provision.dra_allocation",
                                                          "no DeviceClass in the profile (probes.dra_device_class)")
    else:
        out["provision.dra_allocation"] = _guard("provision.dra_allocation",
                                                 lambda: DraAllocation(client, settings, device_class).run())
        out["provision.claim_isolation"] = _guard("provision.claim_isolation",
                                                  lambda: DraIsolation(client, settings, device_class).run())
    out["provision.node_autoscaling"] = _node_autoscaling(config, client, settings, device_skip)
    out["provision.exporter_scrape"] = _exporter_scrape(config, client, settings, device_skip)
    out["provision.gateway_routing"] = _gateway_routing(config, client, settings)
    out["provision.hpa_custom_metric"] = _pod_autoscaling(config, client, settings, device_skip)
    if config.operator_webhook:
        out["provision.operator_webhook"] = _guard("provision.operator_webhook",
                                                   lambda: OperatorWebhook(client, settings, config.operators).run())
    else:
        out["provision.operator_webhook"] = Outcome.skipped(
            "provision.operator_webhook", "operator probe disabled (profile probes.operator_webhook: false)")
    return [out.get(c) or Outcome.skipped(c, NOT_AUTOMATED.get(c, "not run")) for c in ACTIVE_CHECKS]


def _gang(client: Any, settings: Any, choice: str, available: int) -> Outcome:
    from steps.provision.active_gang import choose

    check = "provision.gang_admission"

    def probe() -> Outcome:
        gang = choose(client, settings, choice)
        return Outcome(check, Status.FAILED, gang) if isinstance(gang, str) else gang.run(available)

    return _guard(check, probe)


def _not_run(check: str, label: str, switch: str, on: bool, config: Config, device_skip: str | None = None,
             full_only: str | None = None) -> Outcome | None:
    """The skipped row of a probe that does not run here (switched off, long without --suite full, no device to
    use), or None when it runs."""
    if not on:
        return Outcome.skipped(check, f"{label} probe disabled (profile probes.{switch}: false)")
    if full_only and config.suite != "full":
        return Outcome.skipped(check, f"runs with --suite full only: {full_only}")
    if device_skip:
        return Outcome.skipped(check, device_skip)
    return None


def _node_autoscaling(config: Config, client: Any, settings: Any, device_skip: str | None) -> Outcome:
    from steps.provision.active_autoscaling import CHECK, NodeAutoscaling

    skipped = _not_run(CHECK, "node autoscaling", "node_autoscaling", config.node_autoscaling, config, device_skip,
                       "N+1 whole-node accelerator pods, then waiting for the pool to grow and to shrink back, takes "
                       "tens of minutes")
    if skipped:
        return skipped
    return _guard(CHECK, NodeAutoscaling(client, settings, config.autoscaling_pool, config.scale_up_timeout_s,
                                         config.scale_down_timeout_s).run)


def _exporter_scrape(config: Config, client: Any, settings: Any, device_skip: str | None) -> Outcome:
    from steps.provision.active_exporter import CHECK, ExporterScrape, ExporterSettings, MetricNames

    skipped = _not_run(CHECK, "exporter", "exporter_scrape", config.exporter_scrape, config, device_skip)
    if skipped:
        return skipped
    e = config.exporter
    names = MetricNames(e.utilization_metric, e.memory_metric, e.temperature_metric, e.power_metric)
    return _guard(CHECK, ExporterScrape(client, settings, ExporterSettings(
        e.pod_selectors, e.namespace, e.port, e.path, names, e.load_s, e.timeout_s)).run)


def _gateway_routing(config: Config, client: Any, settings: Any) -> Outcome:
    from steps.provision.active_gateway import CHECK, GatewayRouting

    skipped = _not_run(CHECK, "Gateway routing", "gateway_routing", config.gateway_routing, config)
    if skipped:
        return skipped
    if not config.gateway:
        return Outcome.skipped(CHECK, "the profile names no Gateway to attach the probe's HTTPRoute to "
                               "(serving.gateway)")
    return _guard(CHECK, GatewayRouting(client, settings, config.gateway, config.gateway_requests,
                                        config.gateway_header_requests).run)


def _pod_autoscaling(config: Config, client: Any, settings: Any, device_skip: str | None) -> Outcome:
    from steps.provision.active_hpa import CHECK, HpaPlan, PodAutoscaling

    skipped = _not_run(CHECK, "pod autoscaling", "pod_autoscaling", config.pod_autoscaling, config, device_skip,
                       "loading an accelerator pod until its HPA adds a replica, then waiting for the scale-down, "
                       "takes several minutes")
    if skipped:
        return skipped
    h = config.hpa
    plan = HpaPlan(h.metric.name, h.metric.type, h.metric.target, dict(h.metric.selector), h.load_s, h.max_replicas,
                   h.scale_down_window_s, h.scale_up_timeout_s, h.scale_down_timeout_s, h.condition_grace_s)
    return _guard(CHECK, PodAutoscaling(client, settings, plan).run)


def _available(view: Any, config: Config) -> int:
    total = 0
    for node in view.items("", "nodes"):
        labels = (node.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in config.node_selector.items()):
            try:
                total += int(((node.get("status") or {}).get("allocatable") or {}).get(config.resource_name, 0))
            except ValueError:
                continue
    return total


def _guard(check: str, probe: Any) -> Outcome:
    try:
        result: Outcome = probe()
        return result
    except Exception as exc:  # a probe that breaks is an error row; the others still run
        return Outcome(check, Status.ERROR, f"{type(exc).__name__}: {exc}")
