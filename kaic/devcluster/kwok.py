"""kwok's configuration: the lifecycle stages it plays for the topology's nodes and their pods.

The stages are kwok's own (its module's kustomize/stage/, at the pinned version): nodes become Ready and keep
a heartbeat through their Lease; pods on them become Running; pods owned by a Job then complete (Succeeded);
deleted pods go away.
"""

from __future__ import annotations

from pathlib import Path

STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def write_config(kwok_dir: Path, path: Path) -> Path:
    documents = [(kwok_dir / "kustomize" / "stage" / stage).read_text().strip() for stage in STAGES]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(documents) + "\n")
    return path
