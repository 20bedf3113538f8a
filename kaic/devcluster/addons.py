"""Addons: what starts after the core cluster (control plane, kwok, Kueue, the fake DRA driver) is ready.

An addon installs objects and starts processes; its processes are started, recorded and stopped by the same
bookkeeping as the core (the state file, process groups, never by name). To add one, append it to ADDONS:

    ADDONS.append(Addon("argo", install=install_argo, processes=argo_processes, components=(ARGO,)))

`components` are built (when missing) before the cluster starts. `install` runs first (create namespaces,
ConfigMaps, RBAC...), then every spec `processes` returns is
started and waited on (its `ready` test), in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from kaic.devcluster.apply import Applier
from kaic.devcluster.build import Component
from kaic.devcluster.layout import ClusterPaths
from kaic.devcluster.processes import ProcessSpec


@dataclass(frozen=True)
class ClusterContext:
    """What an addon gets: the cluster's files, a client, and where the binaries are."""

    paths: ClusterPaths
    kubeconfig: Path             # the admin kubeconfig ($KAIC_HOME/cluster/kubeconfig)
    components_kubeconfig: Path  # the identity local components use (cluster admin)
    ca_cert: Path
    api: client.ApiClient
    applier: Applier
    cache: Path

    def binary(self, component: Component, name: str) -> Path:
        return component.path(name, self.cache)

    def free_port(self) -> int:
        from kaic.devcluster.processes import free_port
        return free_port()


def _nothing(ctx: ClusterContext) -> None:
    return None


def _no_processes(ctx: ClusterContext) -> list[ProcessSpec]:
    return []


@dataclass(frozen=True)
class Addon:
    name: str
    install: Callable[[ClusterContext], None] = _nothing
    processes: Callable[[ClusterContext], list[ProcessSpec]] = _no_processes
    components: tuple[Component, ...] = ()  # binaries `make cluster` builds for it (kaic.devcluster.build)
    doc: str = field(default="", compare=False)


def _argo() -> Addon:
    from kaic.devcluster import argo

    return Addon("argo", install=argo.install, processes=argo.processes,
                 doc="Argo's workflow-controller and kaic's pod runner (kaic.devcluster.argo)")


# Started in this order after the core cluster is ready.
ADDONS: list[Addon] = [_argo()]
