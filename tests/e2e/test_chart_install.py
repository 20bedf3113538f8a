"""The Helm chart on the dev cluster, with helm built from its Go module (helm.sh/helm/v3, kaic.devcluster):
it lints, installs into a Pod Security `restricted` namespace, every object it renders exists on the real API
server, a value outside values.schema.json is refused, and the WorkflowTemplate it ships is the compiled one.

The chart's MLflow and MinIO Deployments are objects here: kwok's nodes run no containers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kaic.cluster.kube import KubeCluster
from kaic.devcluster.build import HELM
from tests.e2e import live

pytestmark = pytest.mark.e2e

CHART = Path(__file__).resolve().parents[2] / "charts" / "kaic"


@pytest.fixture(scope="module")
def helm() -> list[str]:
    binary = HELM.path("helm")
    if not binary.is_file():
        pytest.skip(f"no helm at {binary}: `make cluster` builds it ({HELM.module}@{HELM.version})")
    return [str(binary)]


def run(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def test_helm_lints_installs_the_chart_and_refuses_values_outside_the_schema(
        helm: list[str], kubeconfig: str, tmp_path: Path) -> None:
    lint = run([*helm, "lint", str(CHART)], tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    kc: KubeCluster = live.connect(kubeconfig)
    with live.namespace(kc, "kaic-chart") as ns:
        kc.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kaic-object-store", "namespace": ns},
                   "stringData": {"endpoint": f"http://kaic-minio.{ns}.svc:9000", "accessKey": "kaic",
                                  "secretKey": "kaic-secret-key"}})
        base = [*helm, "--kubeconfig", kubeconfig, "--namespace", ns]
        refused = run([*base, "install", "bad", str(CHART), "--set", "nope=1"], tmp_path)
        assert refused.returncode != 0
        assert "nope" in refused.stderr
        assert "additional properties" in refused.stderr.lower()

        installed = run([*base, "install", "kaic", str(CHART)], tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert "STATUS: deployed" in installed.stdout
        manifest = run([*base, "get", "manifest", "kaic"], tmp_path)
        assert manifest.returncode == 0, manifest.stderr
        objects = [d for d in yaml.safe_load_all(manifest.stdout) if d]
        kinds = {o["kind"] for o in objects}
        assert {"WorkflowTemplate", "CronWorkflow", "ServiceAccount", "Role", "RoleBinding"} <= kinds, kinds
        for obj in objects:
            namespace = None if obj["kind"].startswith("Cluster") else ns
            stored = kc.get(obj["apiVersion"], live.plural(kc, obj), obj["metadata"]["name"], namespace)
            assert stored is not None, f"{obj['kind']} {obj['metadata']['name']} was not created"

        compiled = tmp_path / "compiled"
        done = subprocess.run([sys.executable, "-m", "kaic.cli", "compile", "--out", str(compiled)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        for path in sorted(compiled.glob("*.yaml")):
            want = yaml.safe_load(path.read_text())
            plural = {"WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}[want["kind"]]
            live_obj = kc.get("argoproj.io/v1alpha1", plural, want["metadata"]["name"], ns)
            assert live_obj is not None
            assert live_obj["spec"] == want["spec"], f"{want['kind']} on the cluster differs from `kaic compile`"
        uninstalled = run([*base, "uninstall", "kaic"], tmp_path)
        assert uninstalled.returncode == 0, uninstalled.stderr
