"""The kinds of object kaic creates on a cluster, in deletion order (owners before what they own)."""

from __future__ import annotations

# (group_version, plural). Owners first, so their controllers stop recreating children; pods last.
# No Secrets or ConfigMaps: kaic creates none, and sweeping them in every namespace would need the steps'
# ClusterRole to read every Secret and ConfigMap of the cluster (charts/kaic/files/rbac/cluster-read.yaml).
CREATED_KINDS: tuple[tuple[str, str], ...] = (
    ("serving.kserve.io/v1beta1", "inferenceservices"),
    ("gateway.networking.k8s.io/v1", "httproutes"),
    ("trainer.kubeflow.org/v1alpha1", "trainjobs"),
    ("kubeflow.org/v1", "pytorchjobs"),
    ("batch/v1", "jobs"),
    ("apps/v1", "deployments"),
    ("autoscaling/v2", "horizontalpodautoscalers"),
    ("scheduling.x-k8s.io/v1alpha1", "podgroups"),
    ("resource.k8s.io/v1", "resourceclaims"),
    ("resource.k8s.io/v1", "resourceclaimtemplates"),
    ("v1", "services"),
    ("v1", "persistentvolumeclaims"),
    ("v1", "pods"),
)
