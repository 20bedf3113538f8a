"""Resource types kaic knows by name: what `kubectl get NAME` means, and what provision reads.

`READS` is the one list of resources the provision probes read; `kaic snapshot` dumps exactly these
(plus version and discovery), so an offline snapshot answers every READ probe a live cluster would.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaic.cluster import ApiResource, ClusterClient, Obj


@dataclass(frozen=True)
class Known:
    resource: ApiResource
    aliases: tuple[str, ...] = ()  # singular and short names kubectl accepts
    namespace: str | None = None  # read only in this namespace (None: all namespaces / cluster-scoped)
    name: str | None = None  # read only this object

    def group_version(self, version: str) -> str:
        r = self.resource
        return f"{r.group}/{version}" if r.group else version

    def read(self, client: ClusterClient, version: str) -> list[Obj]:
        """Its objects at `version`: the one named object (if it exists) or the listing. ClusterError passes."""
        gv, r = self.group_version(version), self.resource
        if self.name:
            one = client.get(gv, r.plural, self.name, self.namespace)
            return [one] if one else []
        return client.list(gv, r.plural, self.namespace)


def _k(gv: str, kind: str, plural: str, namespaced: bool, *aliases: str, namespace: str | None = None,
       name: str | None = None) -> Known:
    group, _, version = gv.rpartition("/")
    return Known(ApiResource(group, version, kind, plural, namespaced), aliases, namespace, name)


READS: tuple[Known, ...] = (
    _k("v1", "Node", "nodes", False, "node", "no"),
    _k("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False, "crd",
       "crds", "customresourcedefinition"),
    _k("apiregistration.k8s.io/v1", "APIService", "apiservices", False, "apiservice"),
    _k("apps/v1", "DaemonSet", "daemonsets", True, "daemonset", "ds"),
    _k("apps/v1", "Deployment", "deployments", True, "deployment", "deploy"),
    _k("apps/v1", "StatefulSet", "statefulsets", True, "statefulset", "sts"),
    _k("resource.k8s.io/v1", "DeviceClass", "deviceclasses", False, "deviceclass"),
    _k("resource.k8s.io/v1", "ResourceSlice", "resourceslices", False, "resourceslice"),
    _k("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", False, "gatewayclass", "gc"),
    _k("node.k8s.io/v1", "RuntimeClass", "runtimeclasses", False, "runtimeclass"),
    _k("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
       False, "validatingwebhookconfiguration"),
    _k("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
       False, "mutatingwebhookconfiguration"),
    _k("v1", "ConfigMap", "configmaps", True, "configmap", "cm", namespace="kube-system",
       name="cluster-autoscaler-status"),
    _k("karpenter.sh/v1", "NodePool", "nodepools", False, "nodepool"),
    _k("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions", True,
       "network-attachment-definition", "net-attach-def"),
)

OTHER: tuple[Known, ...] = (
    _k("v1", "Pod", "pods", True, "pod", "po"),
    _k("v1", "Namespace", "namespaces", False, "namespace", "ns"),
    _k("resource.k8s.io/v1", "ResourceClaim", "resourceclaims", True, "resourceclaim"),
    _k("resource.k8s.io/v1", "ResourceClaimTemplate", "resourceclaimtemplates", True,
       "resourceclaimtemplate"),
    _k("gateway.networking.k8s.io/v1", "Gateway", "gateways", True, "gateway", "gtw"),
    _k("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", True, "httproute"),
    _k("batch/v1", "Job", "jobs", True, "job"),
    _k("scheduling.volcano.sh/v1beta1", "PodGroup", "podgroups", True),  # Volcano's gangs
    _k("scheduling.run.ai/v2alpha2", "PodGroup", "podgroups", True),  # KAI Scheduler's gangs
)

ALL: tuple[Known, ...] = READS + OTHER


def by_name(name: str) -> Known | None:
    """A `kubectl get NAME` argument ('deviceclass', 'ds', 'nodes', 'resourceslices.resource.k8s.io')."""
    low = name.lower()
    for k in ALL:
        r = k.resource
        full = f"{r.plural}.{r.group}" if r.group else r.plural
        if low in (r.plural, full, r.kind.lower(), *k.aliases):
            return k
    return None


def by_kind(group: str, kind: str) -> Known | None:
    for k in ALL:
        if k.resource.group == group and k.resource.kind == kind:
            return k
    return None
