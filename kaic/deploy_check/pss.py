"""Pod Security Standards, profile "restricted" (Kubernetes 1.35), checked on a pod spec kaic generates.

Implements the restricted profile's rules (which include baseline's): no host namespaces, ports or
hostPath; no privileged or added capabilities beyond NET_BIND_SERVICE, `drop: [ALL]`; no privilege
escalation; non-root; seccomp RuntimeDefault or Localhost; AppArmor/SELinux/procMount/sysctls within
bounds; only the allowed volume types.
"""

from __future__ import annotations

from typing import Any

from kaic.cluster import Obj

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret", "image"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def pod_spec_of(obj: Obj) -> dict[str, Any] | None:
    """The pod spec inside a manifest, or None for kinds that carry none (kaic cannot set one there)."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return dict(spec)
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return dict((spec.get("template") or {}).get("spec") or {})
    if kind == "InferenceService":  # the predictor is an inline PodSpec (plus KServe's own fields)
        return dict(spec.get("predictor") or {})
    return None


def restricted(pod: dict[str, Any]) -> list[str]:
    """Violations of the restricted profile, as `field: why` lines ([] = compliant)."""
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(f):
            out.append(f"spec.{f}: true")
    if psc.get("sysctls"):
        out += [f"spec.securityContext.sysctls: {s.get('name')} is not a safe sysctl" for s in psc["sysctls"]
                if s.get("name") not in SAFE_SYSCTLS]
    for v in pod.get("volumes") or []:
        kinds = [k for k in v if k != "name"]
        out += [f"spec.volumes[{v.get('name')}]: {k} volumes are not allowed"
                for k in kinds if k not in ALLOWED_VOLUMES]
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    pod_nonroot = psc.get("runAsNonRoot") is True
    if psc.get("runAsUser") == 0:
        out.append("spec.securityContext.runAsUser: 0")
    out += _selinux_apparmor(psc, "spec.securityContext")
    groups = (("containers", pod.get("containers") or []), ("initContainers", pod.get("initContainers") or []),
              ("ephemeralContainers", pod.get("ephemeralContainers") or []))
    for field, containers in groups:
        for c in containers:
            where = f"spec.{field}[{c.get('name')}]"
            sc = c.get("securityContext") or {}
            if sc.get("privileged"):
                out.append(f"{where}.securityContext.privileged: true")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(f"{where}.securityContext.capabilities.drop: must include ALL")
            out += [f"{where}.securityContext.capabilities.add: {cap} (only NET_BIND_SERVICE)"
                    for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
            nonroot = sc.get("runAsNonRoot")
            if nonroot is False or (nonroot is None and not pod_nonroot):
                out.append(f"{where}.securityContext.runAsNonRoot: must be true (here or on the pod)")
            if sc.get("runAsUser") == 0:
                out.append(f"{where}.securityContext.runAsUser: 0")
            seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
            if seccomp not in ("RuntimeDefault", "Localhost"):
                out.append(f"{where}.securityContext.seccompProfile.type: must be RuntimeDefault or Localhost "
                           "(here or on the pod)")
            if sc.get("procMount", "Default") != "Default":
                out.append(f"{where}.securityContext.procMount: {sc['procMount']}")
            out += _selinux_apparmor(sc, f"{where}.securityContext")
            out += [f"{where}.ports[{p.get('containerPort')}].hostPort: {p['hostPort']}"
                    for p in c.get("ports") or [] if p.get("hostPort")]
    return out


def _selinux_apparmor(sc: dict[str, Any], where: str) -> list[str]:
    out = []
    se = sc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES:
        out.append(f"{where}.seLinuxOptions.type: {se['type']}")
    out += [f"{where}.seLinuxOptions.{k}: must not be set" for k in ("user", "role") if se.get(k)]
    if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        out.append(f"{where}.appArmorProfile.type: Unconfined")
    return out
