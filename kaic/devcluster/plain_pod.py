"""What the pod runner needs to know about a plain pod (one not built by Argo), as pure functions over its JSON.

The runner emulates one shape only: a single container with an explicit `command` (the image's entrypoint
cannot be known without the image), no init containers. Its `command` + `args` run as a local process.
"""

from __future__ import annotations

from typing import Any

from kaic.devcluster.argo_pod import NotEmulatedError


def container(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod's one container; NotEmulatedError for any other shape, naming what is not emulated."""
    spec, name = pod.get("spec", {}), pod.get("metadata", {}).get("name")
    init = [str(c.get("name")) for c in spec.get("initContainers") or []]
    if init:
        raise NotEmulatedError(f"pod {name}: init containers {init} are not emulated by the pod runner")
    containers = list(spec.get("containers") or [])
    if len(containers) != 1:
        names = [str(c.get("name")) for c in containers]
        raise NotEmulatedError(f"pod {name}: {len(containers)} containers {names}: the pod runner emulates "
                               "plain pods of exactly one container")
    if not containers[0].get("command"):
        raise NotEmulatedError(f"pod {name}: container {containers[0].get('name')!r} has no command (an image "
                               "entrypoint cannot be emulated: give the container an explicit command)")
    return dict(containers[0])


def argv(c: dict[str, Any]) -> list[str]:
    """The container's command line, `$(VAR)` references not yet expanded."""
    return [str(a) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
