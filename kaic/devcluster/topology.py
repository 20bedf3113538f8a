"""The dev cluster's simulated nodes, from devcluster/topology.yaml: Node objects and the DRA pool's slices."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_SELECTOR = f"{KWOK_ANNOTATION}=fake"
POOL_LABEL = "kaic.dev/pool"


class DraPool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: int = Field(gt=0)
    attributes: dict[str, dict[str, Any]] = {}
    capacity: dict[str, dict[str, str]] = {}


class Pool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int = Field(gt=0)
    labels: dict[str, str] = {}
    capacity: dict[str, str]
    dra: DraPool | None = None

    def node_names(self) -> list[str]:
        return [f"kaic-{self.name}-{i}" for i in range(self.count)]


class DraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    driver: str
    deviceClass: str  # noqa: N815 - the file's key


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pools: list[Pool]
    dra: DraSettings

    @classmethod
    def load(cls, path: Path) -> Topology:
        return cls.model_validate(yaml.safe_load(path.read_text()))

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    def nodes(self) -> list[dict[str, Any]]:
        """The Node objects to create (kwok then initializes their status conditions and heartbeats)."""
        return [node_object(pool, name) for pool in self.pools for name in pool.node_names()]

    def resource_slices(self, node_uids: dict[str, str]) -> list[dict[str, Any]]:
        """One ResourceSlice per node of each DRA pool, owned by its Node (uid from `node_uids`)."""
        return [resource_slice(self.dra.driver, pool.dra, name, node_uids[name])
                for pool in self.pools if pool.dra is not None for name in pool.node_names() if name in node_uids]

    def device_class(self) -> dict[str, Any]:
        return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                "metadata": {"name": self.dra.deviceClass},
                "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{self.dra.driver}'"}}]}}


def node_object(pool: Pool, name: str) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok", POOL_LABEL: pool.name, **pool.labels}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
        "spec": {},
        "status": {"capacity": dict(pool.capacity), "allocatable": dict(pool.capacity),
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"}},
    }


def _device_uuid(node: str, index: int) -> str:
    digest = hashlib.sha256(f"{node}/{index}".encode()).digest()[:16]
    return f"gpu-{uuid.UUID(bytes=digest)}"


def resource_slice(driver: str, pool: DraPool, node: str, node_uid: str) -> dict[str, Any]:
    devices = [{
        "name": f"gpu-{i}",
        "attributes": {**pool.attributes, "index": {"int": i}, "uuid": {"string": _device_uuid(node, i)}},
        "capacity": dict(pool.capacity),
    } for i in range(pool.devices)]
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{driver}",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
                                          "controller": True}]},
        "spec": {"driver": driver, "nodeName": node,
                 "pool": {"name": node, "generation": 0, "resourceSliceCount": 1}, "devices": devices},
    }
