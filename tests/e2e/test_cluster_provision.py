"""e2e tier: a real Kubernetes cluster, named by KAIC_E2E_KUBECONFIG (and KAIC_E2E_CONTEXT).

Without one these tests skip with that reason; no cluster can exist on a developer laptop or in CI here.
They run the same `kaic step provision` a workflow pod runs, against the live API server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaic import env

pytestmark = pytest.mark.e2e


@pytest.fixture
def kubeconfig() -> str:
    path = env.KAIC_E2E_KUBECONFIG.get()
    if not path:
        pytest.skip("no cluster: set KAIC_E2E_KUBECONFIG (and KAIC_E2E_CONTEXT) to run the e2e tier")
    return path


def test_provision_fingerprints_a_live_cluster_and_probes_every_requirement(kubeconfig: str, tmp_path: Path) -> None:
    profile = tmp_path / "e2e.yaml"
    context = env.KAIC_E2E_CONTEXT.get()
    profile.write_text(json.dumps({
        "name": "e2e", "platform": "e2e",
        "kubernetes": {"kubeconfig": kubeconfig, "context": context, "namespace": "kaic"},
        "probes": {"active": False},
    }))
    run = subprocess.run(
        [sys.executable, "-m", "kaic.cli", "step", "provision", "--profile", str(profile), "--run-id", "e2e-provision"],
        env={**os.environ, "KAIC_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]  # 1: a MUST requirement is not met by this cluster
    rows = run.stdout
    assert "provision.fingerprint" in rows
    for requirement in ("dra_support", "ai_inference", "gang_scheduling", "secure_accelerator_access"):
        assert f"({requirement})" in rows
