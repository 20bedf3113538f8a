"""Every container image a kaic installation runs: the list to mirror for air-gapped clusters.

The Helm chart's values.yaml defaults must agree with this table (a test checks it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kaic import __version__

# What kaic accepts as a container image reference (registry/repository[:tag][@digest]), wherever it comes from.
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@\-]*$", re.IGNORECASE)
CPU_IMAGE = f"ghcr.io/kaic-dev/kaic:{__version__}"
CUDA_IMAGE = f"ghcr.io/kaic-dev/kaic-cuda:{__version__}"


@dataclass(frozen=True)
class Image:
    ref: str
    role: str
    source: str  # where the chart or workflow uses it


IMAGES: tuple[Image, ...] = (
    Image(CPU_IMAGE, "step image (CPU)", "workflow steps (images/cpu.Dockerfile)"),
    Image(CUDA_IMAGE, "step image (CUDA, NCCL)",
          "workflow steps on GPU clusters (images/cuda.Dockerfile)"),
    Image("ghcr.io/mlflow/mlflow:v3.17.2", "MLflow tracking server", "charts/kaic mlflow.image"),
    Image("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", "in-cluster object storage (optional)",
          "charts/kaic objectStore.minio.image"),
    Image("quay.io/argoproj/workflow-controller:v4.1.2", "Argo Workflows controller (installed separately)",
          "Argo Workflows install"),
    Image("quay.io/argoproj/argoexec:v4.1.2", "Argo Workflows executor (installed separately)",
          "Argo Workflows install"),
    Image("quay.io/argoproj/argocli:v4.1.2", "Argo Server (installed separately)", "Argo Workflows install"),
)
