"""Small Argo Workflow documents for the executor's tests: a workflow from templates, a shell container."""

from __future__ import annotations

from typing import Any


def wf(templates: list[dict[str, Any]], name: str = "wf", **spec: Any) -> dict[str, Any]:
    """A Workflow whose entrypoint is the first template."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": templates[0]["name"], "templates": templates, **spec},
    }


def sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A container template running `sh -c script` (the executor ignores the image)."""
    return {"name": name, "container": {"image": "alpine", "command": ["sh", "-c", script]}, **extra}
