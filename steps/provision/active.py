"""ACTIVE probes: pods that ask for accelerators and report what devices they see.

Pure pod-spec builders (`probe_pod`) and a parser of the probe container's report
(`parse_report`), then an orchestration core (`ActiveProbes`) that creates pods through a
ClusterClient, waits with deadlines, reads logs, and always deletes what it created (by run-id label).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kaic.catalog.evidence import UNVERIFIED
from kaic.cluster import (
    ClusterClient,
    ClusterError,
    DeadlineExceededError,
    Obj,
    labelled,
    phase,
    run_selector,
    wait_until,
)
from kaic.podsecurity import container_security, pod_security
from kaic.results import Outcome, Status

MARKER = "KAIC-PROBE-DONE"
NO_OUTPUT = ("the pod's output cannot be read (its node has no container runtime behind it, e.g. a kwok node), "
             "so what devices it sees is unknown")
PROBE_LABEL = "kaic.dev/probe"
# The devices a container sees: GPU UUIDs (NVIDIA) and device nodes of any vendor, one line each.
DEVICE_LIST = (
    "if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>/dev/null | "
    "sed -n 's/.*(UUID: \\(.*\\))/UUID \\1/p'; nvidia-smi --query-gpu=driver_version --format=csv,noheader "
    "2>/dev/null | head -n 1 | sed 's/^/DRIVER /'; fi; "
    "for d in /dev/nvidia[0-9]* /dev/dri/renderD* /dev/accel/accel* /dev/neuron[0-9]* /dev/vfio/[0-9]*; do "
    "[ -e \"$d\" ] && echo \"DEV $d\"; done"
)
# What the probe container runs: the device list, then a marker line.
REPORT_SCRIPT = f"{DEVICE_LIST}; echo {MARKER}"


@dataclass(frozen=True)
class PodSettings:
    namespace: str
    image: str
    run_id: str
    resource_name: str  # extended resource of one accelerator
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    timeout_s: float = 300.0
    gang_observe_s: float = 30.0  # how long an over-sized gang is watched for a Running pod
    gang_queue: str | None = None
    output_wait_s: float = 30.0  # a pod whose log cannot be read this long has no container behind it


@dataclass(frozen=True)
class Report:
    uuids: tuple[str, ...]
    devices: tuple[str, ...]
    done: bool
    driver: str | None = None  # the driver version the container reads (NVML via nvidia-smi)

    @property
    def ids(self) -> tuple[str, ...]:
        """Device identities: UUIDs where the vendor prints them, else device nodes."""
        return self.uuids or self.devices


def parse_report(text: str) -> Report:
    uuids = tuple(m.group(1) for m in re.finditer(r"^UUID (\S+)\s*$", text, re.M))
    devices = tuple(m.group(1) for m in re.finditer(r"^DEV (\S+)\s*$", text, re.M))
    driver = re.search(r"^DRIVER (\S+)\s*$", text, re.M)
    return Report(uuids, devices, MARKER in text, driver.group(1) if driver else None)


def _suffix(run_id: str) -> str:
    tail = re.sub(r"[^a-z0-9]", "", run_id.lower())[-10:]
    return tail or "run"


def probe_pod(name: str, s: PodSettings, devices: int, hold_s: float = 0, probe: str = "") -> Obj:
    """A pod that reports the devices it sees, then sleeps `hold_s` (so two can overlap)."""
    resources: dict[str, dict[str, str]] = {"requests": {"cpu": "10m", "memory": "16Mi"},
                                            "limits": {"memory": "64Mi"}}
    if devices:
        resources["limits"][s.resource_name] = str(devices)
    command = REPORT_SCRIPT + (f"; sleep {int(hold_s)}" if hold_s > 0 else "")
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": s.namespace, "labels": {PROBE_LABEL: probe or name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "containers": [{
                "name": "probe", "image": s.image, "command": ["sh", "-c", command], "resources": resources,
                "securityContext": container_security(),
            }],
        },
    }
    if s.node_selector:
        pod["spec"]["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        pod["spec"]["tolerations"] = [dict(t) for t in s.tolerations]
    return labelled(pod, s.run_id)


def pending_reason(pod: Obj | None) -> str:
    for c in ((pod or {}).get("status") or {}).get("conditions") or []:
        if c.get("status") == "False" and c.get("message"):
            return f"{c.get('reason', c.get('type'))}: {c['message']}"
    return f"phase {phase(pod) or 'unknown'}"


class ActiveProbes:
    """Runs the active probes against a cluster; every pod it creates is deleted on the way out."""

    def __init__(self, client: ClusterClient, settings: PodSettings, poll_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.s, self.poll_s, self.clock, self.sleep = client, settings, poll_s, clock, sleep
        self.prefix = f"kaic-{_suffix(settings.run_id)}"
        self.accelerator_seen: tuple[str, Report | None] | None = None  # (node, report) of accelerator_pod

    # -- mechanics ---------------------------------------------------------------------------------
    def _get(self, name: str) -> Obj | None:
        return self.client.get("v1", "pods", name, self.s.namespace)

    def _wait_started(self, names: list[str], started: float, timeout_s: float) -> dict[str, float]:
        """Seconds from `started` until each pod was seen Running (or already Succeeded)."""
        seen: dict[str, float] = {}

        def all_started() -> bool:
            for n in names:
                if n not in seen:
                    now = phase(self._get(n))
                    if now in ("Running", "Succeeded"):
                        seen[n] = self.clock() - started
                    elif now == "Failed":
                        raise ClusterError(f"pod {n} failed before it could report")
            return len(seen) == len(names)

        wait_until(all_started, timeout_s, f"pods {', '.join(names)} to reach Running", self.poll_s,
                   self.clock, self.sleep)
        return seen

    def _report(self, name: str, timeout_s: float) -> Report | None:
        """The pod's device report; None when its output cannot be read (no container runtime behind the node,
        e.g. kwok: the API server answers the log request with an error for `output_wait_s`)."""
        first_error: list[float] = []

        def read() -> Report | bool | None:
            try:
                rep = parse_report(self.client.pod_logs(name, self.s.namespace))
            except ClusterError:
                first_error[:] = first_error or [self.clock()]
                return True if self.clock() - first_error[0] >= min(timeout_s, self.s.output_wait_s) else None
            first_error.clear()
            return rep if rep.done else None

        got = wait_until(read, timeout_s, f"the device report of pod {name}", self.poll_s, self.clock, self.sleep)
        return got if isinstance(got, Report) else None

    def report(self, name: str) -> Report | None:
        """The device report of a probe pod (None when its output cannot be read)."""
        return self._report(name, self.s.timeout_s)

    def wait_started(self, names: list[str]) -> dict[str, float]:
        return self._wait_started(names, self.clock(), self.s.timeout_s)

    def _node_of(self, name: str) -> str:
        return str(((self._get(name) or {}).get("spec") or {}).get("nodeName") or "?")

    def cleanup(self, probe: str | None = None) -> None:
        selector = run_selector(self.s.run_id) + (f",{PROBE_LABEL}={probe}" if probe else "")
        self.client.delete_collection("v1", "pods", self.s.namespace, selector)

        def gone() -> bool:
            return not self.client.list("v1", "pods", self.s.namespace, selector)

        wait_until(gone, self.s.timeout_s, f"probe pods ({selector}) to be deleted", self.poll_s, self.clock,
                   self.sleep)

    @contextmanager
    def _scoped(self, probe: str) -> Iterator[None]:
        try:
            yield
        finally:
            self.cleanup(probe)

    def _start(self, pods: list[Obj]) -> float:
        started = self.clock()
        for p in pods:
            self.client.create(p)
        return started

    # -- probes ------------------------------------------------------------------------------------
    def accelerator_pod(self) -> Outcome:
        check, name = "provision.accelerator_pod", f"{self.prefix}-accel"
        with self._scoped("accel"):
            started = self._start([probe_pod(name, self.s, 1, probe="accel")])
            try:
                took = self._wait_started([name], started, self.s.timeout_s)[name]
            except DeadlineExceededError as exc:
                return Outcome(check, Status.FAILED, f"{exc}; {pending_reason(self._get(name))}")
            rep = self._report(name, self.s.timeout_s)
            node = self._node_of(name)
        self.accelerator_seen = (node, rep)
        if rep is None:
            return Outcome(check, Status.SKIPPED, f"{UNVERIFIED}the scheduler placed a pod with 1 "
                           f"{self.s.resource_name} on node {node}, Running after {took:.1f}s; missing: {NO_OUTPUT}",
                           metric="pod_time_to_running_s", value=took, unit="s")
        ok = bool(rep.ids)
        return Outcome(check, Status.PASSED if ok else Status.FAILED,
                       f"pod with 1 {self.s.resource_name} Running after {took:.1f}s" if ok
                       else "pod Running but it sees no accelerator device",
                       metric="pod_time_to_running_s", value=took, unit="s",
                       evidence=f"pod {self.s.namespace}/{name} saw: {', '.join(rep.ids) or 'nothing'}")

    def no_request_no_device(self) -> Outcome:
        check, name = "provision.no_request_no_device", f"{self.prefix}-nodev"
        with self._scoped("nodev"):
            started = self._start([probe_pod(name, self.s, 0, probe="nodev")])
            try:
                self._wait_started([name], started, self.s.timeout_s)
            except DeadlineExceededError as exc:
                return Outcome(check, Status.ERROR, f"{exc}; {pending_reason(self._get(name))}")
            rep = self._report(name, self.s.timeout_s)
            node = self._node_of(name)
        if rep is None:
            return Outcome(check, Status.SKIPPED, f"{UNVERIFIED}a pod without a request ran on node {node}; missing: "
                           f"{NO_OUTPUT}")
        evidence = (f"pod {self.s.namespace}/{name} (no {self.s.resource_name} request, same node selector) saw: "
                    f"{', '.join(rep.uuids + rep.devices) or 'no device'}")
        if rep.uuids or rep.devices:
            return Outcome(check, Status.FAILED, "a pod without an accelerator request can see devices",
                           evidence=evidence)
        return Outcome(check, Status.PASSED, "a pod without an accelerator request sees no device", evidence=evidence)

    def device_isolation(self, available: int) -> Outcome:
        check = "provision.device_isolation"
        if available < 2:
            return Outcome.skipped(check, f"needs 2 allocatable {self.s.resource_name}, the cluster has {available}")
        names = [f"{self.prefix}-iso-a", f"{self.prefix}-iso-b"]
        with self._scoped("iso"):
            hold = self.s.timeout_s
            started = self._start([probe_pod(n, self.s, 1, hold, probe="iso") for n in names])
            try:
                self._wait_started(names, started, self.s.timeout_s)
            except DeadlineExceededError as exc:
                return Outcome(check, Status.FAILED, f"{exc}; " + "; ".join(pending_reason(self._get(n))
                                                                            for n in names))
            got = {n: self._report(n, self.s.timeout_s) for n in names}
            nodes = {n: self._node_of(n) for n in names}
        reps = {n: r for n, r in got.items() if r is not None}
        if len(reps) < len(names):
            return Outcome(check, Status.SKIPPED, f"{UNVERIFIED}two pods with 1 {self.s.resource_name} each Running "
                           f"(nodes {', '.join(nodes.values())}); missing: {NO_OUTPUT}")
        a, b = (set(reps[n].ids) for n in names)
        evidence = "; ".join(f"pod {n} saw {', '.join(reps[n].ids) or 'nothing'}" for n in names)
        if len(a) == 1 and len(b) == 1 and a != b:
            return Outcome(check, Status.PASSED, "two pods each see only their own accelerator", evidence=evidence)
        why = ("a pod sees no device" if not a or not b else "the pods share a device" if a & b
               else "a pod sees more than the one device it requested")
        return Outcome(check, Status.FAILED, why, evidence=evidence)


def judge_driver(seen: tuple[str, Report | None] | None, advertised: dict[str, str]) -> Outcome:
    """driver_runtime_management: the driver the accelerator pod read (NVML) against what its node advertises
    (node labels or DRA driverVersion; `advertised`: node -> version)."""
    check = "provision.driver_match"
    if seen is None:
        return Outcome.skipped(check, "the accelerator pod did not run, so no driver was read")
    node, rep = seen
    if rep is None:
        return Outcome(check, Status.SKIPPED, f"{UNVERIFIED}node {node} advertises driver "
                       f"{advertised.get(node) or 'none'}; missing: {NO_OUTPUT}")
    if rep.driver is None:
        return Outcome.skipped(check, f"unknown: the pod on node {node} cannot read a driver version (no nvidia-smi: "
                               "kaic reads NVIDIA drivers only)")
    want = advertised.get(node)
    evidence = f"pod on node {node} read driver {rep.driver}; the node advertises {want or 'nothing'}"
    if want is None:
        return Outcome(check, Status.FAILED, "the node advertises no driver version to compare with", evidence=evidence)
    if want != rep.driver:
        return Outcome(check, Status.FAILED, f"the driver in use ({rep.driver}) is not the advertised one ({want})",
                       evidence=evidence)
    return Outcome(check, Status.PASSED, f"the driver a pod reads ({rep.driver}) is the one its node advertises",
                   evidence=evidence)
