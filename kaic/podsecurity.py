"""The Pod Security Standards "restricted" settings for the pods kaic creates on a cluster (probe pods,
training Jobs, the InferenceService predictor). No runAsUser: kaic's images set a numeric non-root USER,
and OpenShift assigns its own UID range. Same settings as the workflow's step pods (pipelines/conformance.py).
"""

from __future__ import annotations

from typing import Any


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
