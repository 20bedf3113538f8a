"""Checkpoints in an object store: objects first, a manifest last, checksums verified on read.

Layout under a checkpoint store (the `--checkpoint-uri`, opened with `kaic.stores.objects.open_store`):

    step-00000020/model.pt          the serialized state (framework-specific bytes)
    step-00000020/manifest.json     written LAST: step, world size, sha256 and size per object, versions, time

A checkpoint exists only once its manifest does, so a writer killed halfway leaves objects without a
manifest, which `list_steps`/`newest` never report. Reading verifies every object's size and sha256
against the manifest and raises `CheckpointCorruptError` naming the object on a mismatch: a truncated
or corrupted checkpoint is refused, never loaded. This module knows bytes, not tensors: the training
worker serializes its state (torch.save) and hands the bytes here.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kaic.stores import ObjectNotFound, ObjectStore

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_STEP_DIR = re.compile(r"^step-(\d{8})/manifest\.json$")


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the checkpoint and why."""


class CheckpointCorruptError(CheckpointError):
    """An object's size or sha256 differs from the manifest (truncated, corrupted or missing)."""


@dataclass(frozen=True)
class ObjectEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    step: int
    world_size: int
    framework: str
    objects: dict[str, ObjectEntry]
    versions: dict[str, str] = field(default_factory=dict)  # framework and library versions
    created_at: str = ""  # ISO 8601, UTC
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the training config that made it

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.objects.values())

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=1, sort_keys=True) + "\n").encode()

    @staticmethod
    def from_bytes(data: bytes, where: str) -> Manifest:
        try:
            d = json.loads(data)
            return Manifest(
                step=int(d["step"]), world_size=int(d["world_size"]), framework=str(d["framework"]),
                objects={k: ObjectEntry(str(v["sha256"]), int(v["size"])) for k, v in d["objects"].items()},
                versions={str(k): str(v) for k, v in d.get("versions", {}).items()},
                created_at=str(d.get("created_at", "")), format_version=int(d.get("format_version", 0)),
                extra=dict(d.get("extra", {})),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise CheckpointCorruptError(f"checkpoint manifest {where}: unreadable ({why})") from None


@dataclass(frozen=True)
class Transfer:
    """Bytes moved and the wall time it took (for write/read throughput)."""

    nbytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")


def step_prefix(step: int) -> str:
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    return f"step-{step:08d}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(store: ObjectStore, step: int, objects: Mapping[str, bytes], *, world_size: int, framework: str,
          versions: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None,
          ) -> tuple[Manifest, Transfer]:
    """Write the objects, then the manifest (the commit point). Returns the manifest and the transfer."""
    if not objects:
        raise ValueError("a checkpoint needs at least one object")
    if MANIFEST in objects:
        raise ValueError(f"{MANIFEST!r} is reserved for the manifest")
    prefix = step_prefix(step)
    started = time.perf_counter()
    # Hash in a thread while the bytes are written (hashlib and file/socket writes release the GIL), so a
    # checkpoint costs about max(hash, write), not their sum.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = {name: pool.submit(sha256, data) for name, data in objects.items()}
        for name, data in objects.items():
            store.put_bytes(f"{prefix}/{name}", data)
        entries = {name: ObjectEntry(d.result(), len(objects[name])) for name, d in digests.items()}
    manifest = Manifest(step=step, world_size=world_size, framework=framework, objects=entries,
                        versions=dict(versions or {}), created_at=datetime.now(UTC).isoformat(),
                        extra=dict(extra or {}))
    store.put_bytes(f"{prefix}/{MANIFEST}", manifest.to_bytes())
    return manifest, Transfer(manifest.total_bytes, time.perf_counter() - started)


def list_steps(store: ObjectStore) -> list[int]:
    """Steps that have a manifest (committed checkpoints), ascending."""
    steps = []
    for key in store.list("step-"):
        m = _STEP_DIR.match(key)
        if m:
            steps.append(int(m.group(1)))
    return sorted(steps)


def read_manifest(store: ObjectStore, step: int) -> Manifest:
    key = f"{step_prefix(step)}/{MANIFEST}"
    try:
        data = store.get_bytes(key)
    except (ObjectNotFound, FileNotFoundError):
        raise CheckpointError(f"checkpoint {store.uri(key)}: no manifest (not a committed checkpoint)") from None
    manifest = Manifest.from_bytes(data, store.uri(key))
    if manifest.step != step:
        raise CheckpointCorruptError(f"checkpoint manifest {store.uri(key)}: says step {manifest.step}, not {step}")
    return manifest


def newest(store: ObjectStore) -> Manifest | None:
    """The manifest of the newest committed checkpoint, or None when there is none.

    Its objects are not read here; `read` verifies them (and refuses a corrupt one).
    """
    steps = list_steps(store)
    return read_manifest(store, steps[-1]) if steps else None


def read(store: ObjectStore, step: int) -> tuple[Manifest, dict[str, bytes], Transfer]:
    """Read and verify every object of a checkpoint; CheckpointCorruptError names the first bad one."""
    manifest = read_manifest(store, step)
    started = time.perf_counter()
    out = {}
    for name, entry in manifest.objects.items():
        key = f"{step_prefix(step)}/{name}"
        try:
            data = store.get_bytes(key)
        except (ObjectNotFound, FileNotFoundError):
            raise CheckpointCorruptError(f"checkpoint step {step}: object {store.uri(key)} is missing") from None
        verify(data, entry, store.uri(key))
        out[name] = data
    return manifest, out, Transfer(manifest.total_bytes, time.perf_counter() - started)


def verify(data: bytes, entry: ObjectEntry, where: str) -> None:
    if len(data) != entry.size:
        raise CheckpointCorruptError(
            f"checkpoint object {where}: {len(data)} bytes, manifest says {entry.size} (truncated or overwritten)")
    actual = sha256(data)
    if actual != entry.sha256:
        raise CheckpointCorruptError(
            f"checkpoint object {where}: sha256 {actual[:16]}… does not match the manifest's {entry.sha256[:16]}… "
            "(corrupted)")
