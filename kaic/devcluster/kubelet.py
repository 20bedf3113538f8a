"""The kubelet's share of running a pod, as pure functions: a container's environment and the pod status.

`container_env` resolves `env` and `envFrom` the way the kubelet does (values, `$(VAR)` references to
variables defined before, `fieldRef`, `resourceFieldRef`, ConfigMap and Secret keys with `optional`), with
the API reads injected. A required key or object that is missing raises `ConfigMissingError`, which the kubelet
reports as the waiting reason `CreateContainerConfigError`. The status builders give the phase and
container statuses a kubelet reports, which is what the workflow-controller reads.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Lookup = Callable[[str, str], Mapping[str, str] | None]  # (kind "secret"|"configmap", name) -> data or None
NODE_READY_REASON = "KubeletReady"


class ConfigMissingError(Exception):
    """A referenced Secret/ConfigMap (key) is missing and not optional: CreateContainerConfigError."""


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` escapes, the rest stays literal."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return defined[name] if name in defined else m.group(0)
    return _REF.sub(sub, text)


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("status.podIPs", "status.hostIPs"):
        return ",".join(str(i.get("ip", "")) for i in status.get(path.split(".")[1]) or [])
    m = _FIELD.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise ConfigMissingError(f"fieldRef {path!r} is not supported")


_SUFFIX = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "m": 1e-3,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def quantity(text: str) -> float:
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ConfigMissingError(f"resource quantity {text!r} is not understood")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def resource_value(c: dict[str, Any], ref: dict[str, Any], allocatable: Mapping[str, str]) -> str:
    """`resourceFieldRef`: the container's limit (the node's allocatable when unset) or request, in units of
    `divisor`, rounded up as the kubelet does."""
    kind, _, res = str(ref.get("resource", "")).partition(".")
    resources = c.get("resources") or {}
    value = (resources.get(kind) or {}).get(res)
    if value is None:
        value = allocatable.get(res, "0") if kind == "limits" else "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(quantity(value) / divisor))


_KIND = {"secret": "Secret", "configmap": "ConfigMap"}


def _lookup_key(lookup: Lookup, kind: str, ref: dict[str, Any]) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    data = lookup(kind, name)
    if data is None:
        if optional:
            return None
        raise ConfigMissingError(f'{kind} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise ConfigMissingError(f"couldn't find key {key} in {_KIND[kind]} {name}")
    return data[key]


def container_env(pod: dict[str, Any], c: dict[str, Any], lookup: Lookup,
                  allocatable: Mapping[str, str]) -> dict[str, str]:
    """The container's variables: `envFrom` first, then `env` in order (later entries win)."""
    out: dict[str, str] = {}
    for source in c.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(field)
            if ref is None:
                continue
            data = lookup(kind, ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigMissingError(f'{kind} "{ref.get("name")}" not found')
            out.update({prefix + k: v for k, v in data.items()})
    for e in c.get("env") or []:
        name = e["name"]
        src = e.get("valueFrom")
        if src is None:
            out[name] = expand(str(e.get("value", "")), out)
            continue
        value: str | None
        if "fieldRef" in src:
            value = field_value(pod, src["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in src:
            value = resource_value(c, src["resourceFieldRef"], allocatable)
        elif "configMapKeyRef" in src:
            value = _lookup_key(lookup, "configmap", src["configMapKeyRef"])
        elif "secretKeyRef" in src:
            value = _lookup_key(lookup, "secret", src["secretKeyRef"])
        else:
            raise ConfigMissingError(f"env {name}: valueFrom {sorted(src)} is not supported")
        if value is not None:
            out[name] = value
    return out


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    """A Secret's `data` (base64) and `stringData` as text."""
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


@dataclass(frozen=True)
class Exit:
    """How a container ended."""

    code: int
    reason: str  # Completed, Error, StartError, DeadlineExceeded...
    message: str = ""


def _running(name: str, image: str, started: str) -> dict[str, Any]:
    return {"name": name, "image": image, "imageID": "", "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": started}}}


def _terminated(name: str, image: str, started: str, finished: str, end: Exit) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": end.code, "reason": end.reason, "startedAt": started,
                             "finishedAt": finished}
    if end.message:
        state["message"] = end.message
    return {"name": name, "image": image, "imageID": "", "ready": False, "started": False, "restartCount": 0,
            "state": {"terminated": state}}


def _conditions(now: str, ready: bool, reason: str | None) -> list[dict[str, Any]]:
    def cond(kind: str, ok: bool, why: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now,
                             "lastProbeTime": None}
        if why:
            c["reason"] = why
        return c
    return [cond("PodReadyToStartContainers", True), cond("Initialized", True),
            cond("Ready", ready, reason), cond("ContainersReady", ready, reason), cond("PodScheduled", True)]


def _images(pod: dict[str, Any]) -> dict[str, str]:
    spec = pod.get("spec", {})
    return {c["name"]: str(c.get("image", "")) for c in [*(spec.get("initContainers") or []),
                                                        *(spec.get("containers") or [])]}


def _base(pod: dict[str, Any], phase: str, started: str, ip: str) -> dict[str, Any]:
    return {"phase": phase, "hostIP": ip, "hostIPs": [{"ip": ip}], "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started, "qosClass": (pod.get("status") or {}).get("qosClass", "Burstable")}


def _init_statuses(pod: dict[str, Any], started: str) -> list[dict[str, Any]]:
    images = _images(pod)
    return [{**_terminated(c["name"], images[c["name"]], started, started, Exit(0, "Completed")), "ready": True}
            for c in pod.get("spec", {}).get("initContainers") or []]


def running_status(pod: dict[str, Any], started: str, ip: str) -> dict[str, Any]:
    """Phase Running: init containers done, every container running."""
    images = _images(pod)
    return {**_base(pod, "Running", started, ip), "conditions": _conditions(started, True, None),
            "initContainerStatuses": _init_statuses(pod, started),
            "containerStatuses": [_running(c["name"], images[c["name"]], started)
                                  for c in pod.get("spec", {}).get("containers") or []]}


def waiting_status(pod: dict[str, Any], now: str, ip: str, reason: str, message: str) -> dict[str, Any]:
    """Phase Pending with every container waiting (e.g. CreateContainerConfigError)."""
    images = _images(pod)
    statuses = [{"name": c["name"], "image": images[c["name"]], "imageID": "", "ready": False, "started": False,
                 "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}
                for c in pod.get("spec", {}).get("containers") or []]
    return {**_base(pod, "Pending", now, ip), "conditions": _conditions(now, False, "ContainersNotReady"),
            "initContainerStatuses": _init_statuses(pod, now), "containerStatuses": statuses}


def finished_status(pod: dict[str, Any], started: str, finished: str, ip: str,
                    exits: Mapping[str, Exit], reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    """Phase Succeeded when every container exited 0, else Failed; `reason`/`message` are the pod's own
    (e.g. DeadlineExceeded)."""
    images = _images(pod)
    statuses = [_terminated(c["name"], images[c["name"]], started, finished, exits[c["name"]])
                for c in pod.get("spec", {}).get("containers") or []]
    ok = all(e.code == 0 for e in exits.values()) and reason is None
    body = {**_base(pod, "Succeeded" if ok else "Failed", started, ip),
            "conditions": _conditions(finished, False, "PodCompleted" if ok else "PodFailed"),
            "initContainerStatuses": _init_statuses(pod, started), "containerStatuses": statuses}
    if reason:
        body["reason"] = reason
    if message:
        body["message"] = message
    return body


def node_body(name: str, labels: Mapping[str, str], taints: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64", **labels}},
            "spec": {"taints": taints}}


def node_status(capacity: Mapping[str, str], now: str, ip: str, version: str) -> dict[str, Any]:
    def cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}
    return {"capacity": dict(capacity), "allocatable": dict(capacity),
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": "localhost"}],
            "conditions": [
                cond("Ready", True, NODE_READY_REASON, "kaic pod runner is posting ready status"),
                cond("MemoryPressure", False, "KubeletHasSufficientMemory", "kaic pod runner"),
                cond("DiskPressure", False, "KubeletHasNoDiskPressure", "kaic pod runner"),
                cond("PIDPressure", False, "KubeletHasSufficientPID", "kaic pod runner"),
            ],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": version,
                         "kubeProxyVersion": "", "containerRuntimeVersion": "kaic-pod-runner://0",
                         "osImage": "local processes", "kernelVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}
