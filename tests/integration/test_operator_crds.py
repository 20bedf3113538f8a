"""The operator probe's objects against each operator's released CRD (robust_controller, steps/provision/
active_operator.py): every invalid and valid object the probe creates must pass the CRD's OpenAPI schema, so that
only the operator's webhook can refuse the invalid one. The CRDs come from the operators' Go modules, which
`make cluster-build` downloads into the Go module cache (kaic.devcluster.build.SOURCES); CI runs these once the
build is done. KAITO's module is not served: its Workspace is checked by shape in the unit tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.deploy_check.validate import crd
from tests.unit.test_provision_operator import CASES, S, _objects

pytestmark = [pytest.mark.integration, pytest.mark.go_built]

MOD = Path.home() / "go" / "pkg" / "mod"
# Each operator's CRD as its release ships it (Go module cache); KAITO's module is not there.
CRDS: dict[str, dict[str, Path]] = {
    "trainer": {"TrainJob": MOD / "github.com/kubeflow/trainer/v2@v2.2.0/manifests/base/crds/"
                            "trainer.kubeflow.org_trainjobs.yaml",
                "TrainingRuntime": MOD / "github.com/kubeflow/trainer/v2@v2.2.0/manifests/base/crds/"
                                   "trainer.kubeflow.org_trainingruntimes.yaml"},
    "kuberay": {"RayCluster": MOD / "github.com/ray-project/kuberay/ray-operator@v1.6.0/config/crd/bases/"
                                    "ray.io_rayclusters.yaml"},
    "jobset": {"JobSet": MOD / "sigs.k8s.io/jobset@v0.11.1/config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml"},
    "lws": {"LeaderWorkerSet": MOD / "sigs.k8s.io/lws@v0.8.0/config/crd/bases/"
                                     "leaderworkerset.x-k8s.io_leaderworkersets.yaml"},
    "kserve": {"InferenceService": MOD / "github.com/kserve/kserve@v0.20.0/config/crd/full/"
                                         "serving.kserve.io_inferenceservices.yaml"},
    "kueue": {"ClusterQueue": MOD / "sigs.k8s.io/kueue@v0.17.1/config/components/crd/bases/"
                                    "kueue.x-k8s.io_clusterqueues.yaml",
              "ResourceFlavor": MOD / "sigs.k8s.io/kueue@v0.17.1/config/components/crd/bases/"
                                      "kueue.x-k8s.io_resourceflavors.yaml"}}


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_object_passes_its_crd_schema(name: str) -> None:
    checked = 0
    for what, obj in _objects(CASES[name]).items():
        path = CRDS[name].get(obj["kind"])
        assert path is not None, f"{name} {what}: no CRD for {obj['kind']}"
        if not path.is_file():
            pytest.skip(f"{path} is absent: `make cluster-build` downloads it into the Go module cache")
        assert crd(obj, path) == [], f"{name} {what}"
        checked += 1
    assert checked >= 2


def test_the_crd_check_catches_a_field_the_schema_lacks() -> None:
    path = CRDS["jobset"]["JobSet"]
    if not path.is_file():
        pytest.skip(f"{path} is absent: `make cluster-build` downloads it into the Go module cache")
    obj = CASES["jobset"].valid("x", "v1alpha2", S)
    obj["spec"]["replicatedJobs"][0]["replica"] = 1
    assert crd(obj, path)
