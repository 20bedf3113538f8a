"""Kubeconfig files for the dev cluster: one per identity, bearer token + the cluster CA."""

from __future__ import annotations

from pathlib import Path

import yaml

CONTEXT = "kaic-dev"


def render(server: str, ca_file: Path, token: str, user: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
    }, sort_keys=False)


def write(path: Path, server: str, ca_file: Path, token: str, user: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(server, ca_file, token, user))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
