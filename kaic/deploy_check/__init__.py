"""Offline verification of what kaic deploys: the Helm chart's values, the manifests kaic generates, the
chart's copies of the compiled workflows, Pod Security, and the steps' RBAC.

Not on kaic's runtime path: `scripts/verify_deploy.py` (run by `make lint`) and tests/unit use it. Heavy
or dev-only libraries (jsonschema, kubernetes_validate, hera) are imported inside functions.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaic"
SHARED = ROOT.parent / "shared"
ARGO_SCHEMA = SHARED / "reference" / "argo-workflows" / "schema.json"
KSERVE_CRD = SHARED / "reference" / "kserve" / "serving.kserve.io_inferenceservices.crd.yaml"
K8S_VERSION = "1.35"  # the Kubernetes version the schemas are taken for (kubernetes_validate)
