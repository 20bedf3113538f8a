"""Artifacts on the local object store: ``$KAIC_HOME/objects/artifacts/<workflow-name>/<key>``.

An output artifact is copied from its (mapped) ``path`` to the key ``s3.key`` when given, else
``<node-id>/<artifact-name>``. An input artifact comes from ``raw.data``, from ``s3.key`` in that
folder, or ``from: "{{steps.X.outputs.artifacts.Y}}"`` (which resolves to the producer's key; ``subPath``
picks a file or folder inside it), and
is copied to its (mapped) ``path`` before the process starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


class ArtifactError(RuntimeError):
    pass


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)


def _safe_key(store: Path, key: str) -> Path:
    target = (store / key.lstrip("/")).resolve()
    if not target.is_relative_to(store.resolve()):
        raise ArtifactError(f"artifact key {key!r} leaves the artifact store")
    return target


def fetch_input(store: Path, spec: dict[str, Any], destination: Path) -> None:
    """Materialize one (substituted) input artifact at ``destination``."""
    name = spec.get("name")
    raw = spec.get("raw")
    if isinstance(raw, dict) and "data" in raw:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(str(raw["data"]), encoding="utf-8")
        return
    key = spec.get("from") or (spec.get("s3") or {}).get("key")
    if not key:
        if spec.get("optional"):
            return
        raise ArtifactError(f"input artifact {name!r} has no source")
    if spec.get("subPath"):  # a file or folder inside the artifact
        key = f"{str(key).rstrip('/')}/{str(spec['subPath']).lstrip('/')}"
    source = _safe_key(store, str(key))
    if not source.exists():
        if spec.get("optional"):
            return
        raise ArtifactError(f"input artifact {name!r}: key {key!r} is not in the object store")
    _copy(source, destination)


def save_output(store: Path, spec: dict[str, Any], source: Path, default_key: str) -> dict[str, str] | None:
    """Copy one output artifact into the store; its record, or None when optional and absent."""
    name = str(spec.get("name"))
    if not source.exists():
        if spec.get("optional"):
            return None
        raise ArtifactError(f"output artifact {name!r}: {spec.get('path')} was not written")
    key = str((spec.get("s3") or {}).get("key") or default_key)
    _copy(source, _safe_key(store, key))
    return {"name": name, "key": key, "path": str(spec.get("path", ""))}
