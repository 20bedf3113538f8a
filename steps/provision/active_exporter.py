"""ACTIVE probe of `accelerator_metrics` (its test plan): scrape each accelerator node's metrics exporter, then
again while a short accelerator load runs on that node.

Passed only when every accelerator node (Ready, advertising the profile's accelerator resource) has an exporter
pod Running that reports per-device utilization AND memory (temperature and power are noted where present),
and on every node a device's utilization or memory used rose while the load ran. The exporter is read through
the API server's pod proxy (`get pods/proxy`), so kaic needs no network path of its own to the pod. The
highest utilization seen under load is recorded (`exporter_peak_utilization_pct`).

`parse_devices`, `load_pod` and `judge_exporter` are pure; `ExporterScrape` lists the exporters, scrapes,
creates one load pod per node through a ClusterClient and always deletes them (run-id label).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from prometheus_client.parser import text_string_to_metric_families

from kaic.catalog.evidence import presence
from kaic.cluster import ClusterClient, ClusterError, Obj, labelled, phase, run_selector, wait_until
from kaic.podsecurity import container_security, pod_security
from kaic.results import Outcome, Status
from steps.provision.active import PROBE_LABEL, PodSettings, pending_reason
from steps.provision.active_autoscaling import pool_nodes
from steps.provision.active_platform import Clock, run_suffix

CHECK = "provision.exporter_scrape"
METRIC = "exporter_peak_utilization_pct"
PROBE = "exporter-load"
LOAD_DONE = "KAIC-LOAD-DONE"
# What a load pod runs (the kaic image's torch): fp32 matmuls on the one GPU it was given, for N seconds.
LOAD_SCRIPT = """\
import sys, time, torch
if not torch.cuda.is_available():
    sys.exit("KAIC-LOAD no CUDA device visible")
a = torch.randn(8192, 8192, device="cuda")
b = torch.randn_like(a)
end, n = time.monotonic() + float(sys.argv[1]), 0
while time.monotonic() < end:
    a @ b
    n += 1
    if n % 16 == 0:
        torch.cuda.synchronize()
torch.cuda.synchronize()
print("KAIC-LOAD-DONE", n, "matmuls", flush=True)
"""


@dataclass(frozen=True)
class MetricNames:
    utilization: str = "DCGM_FI_DEV_GPU_UTIL"
    memory: str = "DCGM_FI_DEV_FB_USED"
    temperature: str | None = "DCGM_FI_DEV_GPU_TEMP"
    power: str | None = "DCGM_FI_DEV_POWER_USAGE"


@dataclass(frozen=True)
class Device:
    """One device's readings in one scrape (None: the exporter did not report that metric for it)."""

    key: str  # UUID (or gpu index, or device name), plus "/GPU_I_ID" for a MIG instance
    utilization: float | None = None
    memory: float | None = None
    temperature: float | None = None
    power: float | None = None


def _device_key(labels: Mapping[str, str]) -> str | None:
    base = labels.get("UUID") or labels.get("uuid") or labels.get("gpu") or labels.get("device")
    if not base:
        return None
    instance = labels.get("GPU_I_ID")
    return f"{base}/{instance}" if instance else base


def parse_devices(text: str, names: MetricNames) -> tuple[Device, ...]:
    """Per-device readings from a Prometheus text exposition; series without a device label are left out.
    Raises ValueError on text that is not the exposition format."""
    wanted = {names.utilization: "utilization", names.memory: "memory"}
    if names.temperature:
        wanted[names.temperature] = "temperature"
    if names.power:
        wanted[names.power] = "power"
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            what, key = wanted.get(s.name), _device_key(s.labels)
            if what is None or key is None:
                continue
            seen = found.setdefault(key, {})
            seen[what] = max(seen.get(what, s.value), s.value)  # a device's series per pod (k8s mode): the highest
    return tuple(Device(k, **v) for k, v in sorted(found.items()))


def highest(a: Iterable[Device], b: Iterable[Device]) -> tuple[Device, ...]:
    """Per device, the highest of each reading in two scrapes."""
    out = {d.key: d for d in a}
    for d in b:
        old = out.get(d.key)
        if old is None:
            out[d.key] = d
            continue
        out[d.key] = Device(d.key, *(max((x for x in (getattr(old, f), getattr(d, f)) if x is not None), default=None)
                                     for f in ("utilization", "memory", "temperature", "power")))
    return tuple(sorted(out.values(), key=lambda d: d.key))


@dataclass(frozen=True)
class NodeSeen:
    node: str
    exporter: str = ""  # "namespace/pod" scraped; "" when no exporter pod is Running on the node
    error: str = ""  # why scraping it failed
    before: tuple[Device, ...] = ()
    during: tuple[Device, ...] = ()  # per device, the highest readings while the load ran
    load: str = ""  # why the load pod did not run ("" when it ran)
    scrapes: int = 0  # scrapes while the load ran


@dataclass(frozen=True)
class ExporterSeen:
    nodes: tuple[NodeSeen, ...]
    names: MetricNames = field(default_factory=MetricNames)
    looked_for: str = ""  # which pods count as the exporter, in words
    load_s: float = 0.0


def _missing(devices: tuple[Device, ...], names: MetricNames) -> list[str]:
    return [n for n, attr in ((names.utilization, "utilization"), (names.memory, "memory"))
            if not any(getattr(d, attr) is not None for d in devices)]


def _moved(n: NodeSeen) -> list[str]:
    before = {d.key: d for d in n.before}
    out = []
    for d in n.during:
        b = before.get(d.key)
        if b is None:
            continue
        util = d.utilization is not None and b.utilization is not None and d.utilization > b.utilization
        mem = d.memory is not None and b.memory is not None and d.memory > b.memory
        if util or mem:
            out.append(_values(b, d))
    return out


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _values(b: Device, d: Device | None) -> str:
    d = d or b
    return (f"{b.key} utilization {_num(b.utilization)}->{_num(d.utilization)}%, memory {_num(b.memory)}->"
            f"{_num(d.memory)} MiB")


def _extras(seen: ExporterSeen) -> str:
    devices = [d for n in seen.nodes for d in n.before]
    notes = [f"{what} for {sum(1 for d in devices if getattr(d, attr) is not None)}/{len(devices)} devices"
             for what, attr, name in (("temperature", "temperature", seen.names.temperature),
                                      ("power", "power", seen.names.power)) if name]
    return f" ({', '.join(notes)})" if notes else ""


def judge_scrapes(seen: ExporterSeen) -> tuple[Status, str] | None:
    """What already decides the probe without a load: no node, a node without an exporter, a scrape that
    failed, a metric not reported. None when every exporter reports both per device."""
    if not seen.nodes:
        return Status.SKIPPED, "no Ready accelerator node to scrape"
    lacking = [n.node for n in seen.nodes if not n.exporter]
    if lacking:
        return Status.FAILED, (f"no exporter pod Running on accelerator node(s) {', '.join(lacking)} (looked for "
                               f"{seen.looked_for or 'exporter pods'})")
    broken = [f"{n.exporter} on {n.node}: {n.error}" for n in seen.nodes if n.error]
    if broken:
        return Status.FAILED, "could not scrape the exporter: " + "; ".join(broken)
    missing = [f"{n.exporter} on {n.node} reports no per-device {' or '.join(m)}" for n in seen.nodes
               if (m := _missing(n.before, seen.names))]
    if missing:
        return Status.FAILED, "; ".join(missing)
    return None


def judge_exporter(seen: ExporterSeen) -> tuple[Status, str]:
    """Every node: an exporter, per-device utilization and memory, and a device that moved under load."""
    names = seen.names
    decided = judge_scrapes(seen)
    if decided:
        return decided
    reported = (f"the exporters of {len(seen.nodes)} accelerator node(s) report per-device {names.utilization} and "
                f"{names.memory}{_extras(seen)}")
    not_run = [f"{n.node}: {n.load}" for n in seen.nodes if n.load]
    if not_run:
        return Status.SKIPPED, presence(CHECK, reported, "whether they move under load: the load pod did not run "
                                        "on " + "; ".join(not_run)).message
    still = [f"{n.node} ({n.scrapes} scrapes): " + ", ".join(_values(b, next((d for d in n.during if d.key == b.key),
                                                                              None)) for b in n.before)
             for n in seen.nodes if not _moved(n)]
    if still:
        return Status.FAILED, (f"{reported}, but under a {seen.load_s:g}s accelerator load neither {names.utilization} "
                               f"nor {names.memory} rose on any device of " + "; ".join(still))
    moved = "; ".join(f"{n.node}: {_moved(n)[0]}" for n in seen.nodes)
    return Status.PASSED, f"{reported}, and they rose under a {seen.load_s:g}s accelerator load: {moved}"


def peak_utilization(seen: ExporterSeen) -> float | None:
    values = [d.utilization for n in seen.nodes for d in n.during if d.utilization is not None]
    return max(values) if values else None


def load_pod(name: str, s: PodSettings, node: str, load_s: float) -> Obj:
    """A pod with one accelerator, pinned to `node` (by name, as a DaemonSet pins), burning it for `load_s`."""
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": s.namespace, "labels": {PROBE_LABEL: PROBE}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
            "containers": [{
                "name": "load", "image": s.image, "command": ["python", "-c", LOAD_SCRIPT, f"{load_s:g}"],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                              "limits": {"memory": "4Gi", s.resource_name: "1"}},
                "securityContext": container_security(),
                "terminationMessagePolicy": "FallbackToLogsOnError",  # a failed load says why in its status
            }],
        },
    }
    if s.tolerations:
        pod["spec"]["tolerations"] = [dict(t) for t in s.tolerations]
    return labelled(pod, s.run_id)


@dataclass(frozen=True)
class ExporterSettings:
    pod_selectors: tuple[str, ...]
    namespace: str | None  # None: every namespace
    port: int = 9400
    path: str = "/metrics"
    names: MetricNames = field(default_factory=MetricNames)
    load_s: float = 60.0
    timeout_s: float = 300.0
    scrape_s: float = 5.0  # between scrapes while the load runs


def _terminated(pod: Obj | None) -> str:
    for c in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        t = (c.get("state") or {}).get("terminated") or {}
        if t:
            return f"exit code {t.get('exitCode')}: {(t.get('message') or t.get('reason') or '').strip()[:200]}"
    return "its container failed"


class ExporterScrape:
    """Runs the probe; its load pods are deleted on the way out, whatever happens."""

    def __init__(self, client: ClusterClient, s: PodSettings, e: ExporterSettings, clock: Clock | None = None) -> None:
        self.client, self.s, self.e, self.clock = client, s, e, clock or Clock()
        self.selector = f"{run_selector(s.run_id)},{PROBE_LABEL}={PROBE}"
        self.prefix = f"kaic-{run_suffix(s.run_id)}-{PROBE}"

    def _exporters(self) -> dict[str, Obj]:
        """node -> an exporter pod Running there."""
        out: dict[str, Obj] = {}
        for sel in self.e.pod_selectors:
            for pod in self.client.list("v1", "pods", self.e.namespace, sel):
                node = (pod.get("spec") or {}).get("nodeName")
                if node and phase(pod) == "Running":
                    out.setdefault(str(node), pod)
        return out

    def _scrape(self, pod: Obj) -> tuple[Device, ...]:
        meta = pod.get("metadata") or {}
        text = self.client.pod_proxy_get(str(meta.get("name")), str(meta.get("namespace")), self.e.port, self.e.path)
        return parse_devices(text, self.e.names)

    def _baseline(self, node: str, pod: Obj | None) -> NodeSeen:
        if pod is None:
            return NodeSeen(node)
        meta = pod.get("metadata") or {}
        seen = NodeSeen(node, f"{meta.get('namespace')}/{meta.get('name')}")
        try:
            return replace(seen, before=self._scrape(pod))
        except (ClusterError, ValueError) as exc:
            return replace(seen, error=f"{type(exc).__name__}: {exc}"[:300])

    def run(self) -> Outcome:
        nodes = [n.name for n in pool_nodes(self.client.list("v1", "nodes"), self.s.node_selector,
                                            self.s.resource_name)]
        ns = f"namespace {self.e.namespace}" if self.e.namespace else "any namespace"
        looked_for = f"pods labelled {' or '.join(self.e.pod_selectors)} in {ns}"
        exporters = self._exporters()
        seen = ExporterSeen(tuple(self._baseline(n, exporters.get(n)) for n in nodes), self.e.names, looked_for,
                            self.e.load_s)
        if judge_scrapes(seen):  # no node, no exporter, unreachable or metrics missing: no load needed
            return self._outcome(seen)
        try:
            seen = self._load(seen, exporters)
        finally:
            self._delete_pods()
        return self._outcome(seen)

    def _outcome(self, seen: ExporterSeen) -> Outcome:
        status, message = judge_exporter(seen)
        evidence = "; ".join(f"{n.node}: {n.exporter or 'no exporter'}" for n in seen.nodes) or None
        peak = peak_utilization(seen)
        if peak is None:
            return Outcome(CHECK, status, message, evidence=evidence)
        return Outcome(CHECK, status, message, metric=METRIC, value=peak, unit="%", evidence=evidence)

    def _load(self, seen: ExporterSeen, exporters: Mapping[str, Obj]) -> ExporterSeen:
        names = {n.node: f"{self.prefix}-{i}" for i, n in enumerate(seen.nodes)}
        for n in seen.nodes:
            self.client.create(load_pod(names[n.node], self.s, n.node, self.e.load_s))
        by_node = {n.node: n for n in seen.nodes}
        started: dict[str, float] = {}
        why: dict[str, str] = {}
        began = self.clock.now()
        while True:
            now = self.clock.now()
            for node, name in names.items():
                if node in started or node in why:
                    continue
                pod = self.client.get("v1", "pods", name, self.s.namespace)
                state = phase(pod)
                if state in ("Running", "Succeeded"):
                    started[node] = now
                elif state == "Failed":
                    why[node] = f"pod {name} failed ({_terminated(pod)})"
                elif now - began >= self.e.timeout_s:
                    why[node] = f"pod {name} not Running after {self.e.timeout_s:g}s ({pending_reason(pod)})"
            for node, t0 in started.items():
                n = by_node[node]
                if now - t0 > self.e.load_s or n.error:
                    continue
                try:
                    got = self._scrape(exporters[node])
                except (ClusterError, ValueError) as exc:
                    by_node[node] = replace(n, error=f"{type(exc).__name__}: {exc}"[:300])
                    continue
                by_node[node] = replace(n, during=highest(n.during, got), scrapes=n.scrapes + 1)
            if all(node in why or (node in started and now - started[node] > self.e.load_s) for node in names):
                break
            self.clock.sleep(self.e.scrape_s)
        nodes = tuple(replace(by_node[n.node], load=why.get(n.node, "")) for n in seen.nodes)
        return replace(seen, nodes=nodes)

    def _delete_pods(self) -> None:
        self.client.delete_collection("v1", "pods", self.s.namespace, self.selector)
        wait_until(lambda: not self.client.list("v1", "pods", self.s.namespace, self.selector), self.e.timeout_s,
                   f"exporter load pods ({self.selector}) to be deleted", self.clock.poll_s, self.clock.now,
                   self.clock.sleep)
