"""The operator probe (robust_controller): each operator's invalid and valid objects against the operator's
real CRD schema (from the Go module cache, where it is there) and against its webhook's rule (restated from
its Go code in kaic.deploy_check.drive.WEBHOOKS); the judge on refusals in the API server's exact text; and
`OperatorWebhook.run` on a simulated cluster serving only some operators: order, first pass, evidence, cleanup.
The real webhooks run only on a cluster (tests/e2e/test_provision_active_devcluster.py: Kueue)."""

from __future__ import annotations

import argparse
import copy
import typing
from typing import Any

import pytest

from kaic.cluster import RUN_ID_LABEL, ApiResource, ClusterError, Obj
from kaic.cluster.fake import FakeCluster
from kaic.deploy_check.drive import WEBHOOKS, admit
from kaic.deploy_check.pss import restricted
from kaic.errors import ConfigError
from kaic.profiles import OperatorName, load_profile, parse_profile
from kaic.results import Status
from steps.provision import make_config
from steps.provision.active import PROBE_LABEL, PodSettings
from steps.provision.active_operator import (
    OPERATOR_NAMES,
    OPERATORS,
    OperatorCase,
    OperatorWebhook,
    judge_operator,
)
from steps.provision.active_platform import Clock

pytestmark = pytest.mark.unit

S = PodSettings("kaic", "ghcr.io/kaic-dev/kaic:0.1.0", "kaic-20261207-090000-abc123", "nvidia.com/gpu",
                node_selector={"kaic.dev/pool": "gpu"}, tolerations=({"key": "nvidia.com/gpu", "operator": "Exists",
                                                                       "effect": "NoSchedule"},), timeout_s=60)
CASES = {c.name: c for c in OPERATORS}
def _kueue_denial(obj: Obj, cluster: FakeCluster) -> str | None:  # kueue pkg/webhooks/clusterqueue_webhook.go
    for group in obj["spec"]["resourceGroups"]:
        for flavor in group["flavors"]:
            for r in flavor["resources"]:
                if str(r["nominalQuota"]).startswith("-"):
                    return (f'ClusterQueue.kueue.x-k8s.io "{obj["metadata"]["name"]}" is invalid: '
                            "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: Invalid value: "
                            f'"{r["nominalQuota"]}": must be greater than or equal to 0')
    return None


ALL_WEBHOOKS = {**WEBHOOKS, "ClusterQueue": ("vclusterqueue.kb.io", _kueue_denial)}
KINDS = {"trainer": "TrainJob", "kuberay": "RayCluster", "jobset": "JobSet", "lws": "LeaderWorkerSet",
         "kserve": "InferenceService", "kueue": "ClusterQueue", "kaito": "Workspace"}


def _objects(case: OperatorCase) -> dict[str, Obj]:
    version = case.versions[0]
    name = f"kaic-abc123-{case.name}"
    out = {"invalid": case.invalid(f"{name}-invalid", version, S), "valid": case.valid(f"{name}-valid", version, S)}
    out |= {f"prerequisite {o['kind']}": o for o in case.prerequisites(f"{name}-valid", version, S)}
    return out


def _walk(obj: Any) -> list[Any]:
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    return [obj, *(d for c in children for d in _walk(c))]


def _pod_specs(obj: Any) -> list[dict[str, Any]]:
    """Every pod spec inside an object: each `template` whose spec has containers, and KServe's predictor."""
    found: list[dict[str, Any]] = []
    for o in _walk(obj):
        if not isinstance(o, dict):
            continue
        spec = o.get("spec")
        if o.get("kind") == "InferenceService":
            found.append({k: v for k, v in o["spec"]["predictor"].items() if k not in ("minReplicas",
                                                                                        "maxReplicas", "labels")})
        elif isinstance(spec, dict) and "containers" in spec and "metadata" in o:
            found.append(spec)
    return found


# -- the objects ---------------------------------------------------------------------------------------------
def test_one_case_per_operator_and_the_profile_names_them_all() -> None:
    assert [c.operator for c in OPERATORS] == ["Kubeflow Trainer", "KubeRay", "JobSet", "LeaderWorkerSet", "KServe",
                                               "Kueue", "KAITO"]
    assert set(typing.get_args(OperatorName)) == set(OPERATOR_NAMES) == set(KINDS)


def test_kaitos_workspace_has_its_shape() -> None:  # no CRD in the module cache: what its Go types say
    bad, good = _objects(CASES["kaito"])["invalid"], _objects(CASES["kaito"])["valid"]
    for obj in (bad, good):
        assert set(obj) == {"apiVersion", "kind", "metadata", "resource"} | ({"inference"} if obj is good else set())
        assert obj["resource"] == {"labelSelector": {"matchLabels": {"kaic.dev/pool": "gpu"}}}
    assert set(good["inference"]) == {"template"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_only_the_invalid_object_breaks_the_webhooks_rule(name: str) -> None:
    case, objs = CASES[name], _objects(CASES[name])
    cluster = FakeCluster([], validate=False, objects=[o for w, o in objs.items() if w.startswith("prerequisite")])
    with pytest.raises(ClusterError, match=f'admission webhook "{ALL_WEBHOOKS[KINDS[name]][0]}" denied the request'):
        admit(objs["invalid"], cluster, ALL_WEBHOOKS)
    admit(objs["valid"], cluster, ALL_WEBHOOKS)
    assert objs["invalid"]["kind"] == objs["valid"]["kind"] == KINDS[name]
    assert case.plural in objs["valid"]["apiVersion"] or objs["valid"]["apiVersion"].startswith(case.group)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_objects_are_labelled_placed_and_their_pods_small_and_restricted(name: str) -> None:
    case = CASES[name]
    for what, obj in _objects(case).items():
        meta = obj["metadata"]
        assert meta["labels"][PROBE_LABEL] == "operator", what
        if case.namespaced:
            assert meta["namespace"] == S.namespace, what
            assert meta["labels"][RUN_ID_LABEL] == S.run_id, what
        else:
            assert "namespace" not in meta, what
        assert len(meta["name"]) <= 63
        templates = [v for v in _walk(obj) if isinstance(v, dict) and "containers" in (v.get("spec") or {})]
        assert all(t["metadata"]["labels"][RUN_ID_LABEL] == S.run_id for t in templates), what
        for spec in _pod_specs(obj):
            FakeCluster([]).create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kaic"},
                                    "spec": spec})  # a valid PodSpec (Kubernetes' schema, strict)
            assert restricted(spec) == [], what
            assert "nodeSelector" not in spec  # no accelerator: any node
            assert all(S.resource_name not in (c["resources"].get("limits") or {}) for c in spec["containers"])
            assert all(c["image"] == S.image for c in spec["containers"])


def test_the_run_to_completion_pods_exit_and_the_serving_ones_keep_running() -> None:
    for name in ("trainer", "jobset"):
        pods = [p for o in _objects(CASES[name]).values() for p in _pod_specs(o)]
        assert pods
        assert all(p["restartPolicy"] == "Never" for p in pods)
    for name in ("kuberay", "lws", "kserve", "kaito"):
        pods = _pod_specs(_objects(CASES[name])["valid"])
        assert pods
        assert all("restartPolicy" not in p for p in pods)
    head = _pod_specs(_objects(CASES["kuberay"])["valid"])[0]["containers"][0]
    assert head["readinessProbe"]["exec"]["command"] == ["true"]  # KubeRay injects no Ray probes then


# -- the judge, on refusals as the API server words them -----------------------------------------------------
DENIALS = {  # each operator's message as its webhook returns it
    "trainer": 'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: spec.runtimeRef: '
               'Invalid value: {"name":"kaic-x-trainer-invalid-absent-runtime","apiGroup":"trainer.kubeflow.org",'
               '"kind":"TrainingRuntime"}: trainingruntimes.trainer.kubeflow.org '
               '"kaic-x-trainer-invalid-absent-runtime" not found: specified trainingRuntime must be created before '
               "the TrainJob is created",
    "kuberay": 'admission webhook "vraycluster.kb.io" denied the request: RayCluster.ray.io "kaic-x-kuberay-invalid" '
               "is invalid: spec.workerGroupSpecs[1]: Invalid value: {...}: worker group names must be unique",
    "jobset": 'admission webhook "vjobset.kb.io" denied the request: invalid replicatedJob name \'absent\' does not '
              "appear in .spec.ReplicatedJobs",
    "lws": 'admission webhook "vleaderworkerset.kb.io" denied the request: spec.leaderWorkerTemplate.size: Invalid '
           "value: 0: size must be equal or greater than 1",
    "kserve": 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
              "'MinReplicas' cannot be less than 0",
    "kueue": 'admission webhook "vclusterqueue.kb.io" denied the request: ClusterQueue.kueue.x-k8s.io '
             '"kaic-x-kueue-invalid" is invalid: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: '
             'Invalid value: "-1": must be greater than or equal to 0',
    "kaito": 'admission webhook "validation.workspace.kaito.sh" denied the request: validation failed: Either '
             "Inference or Tuning must be specified, not neither: spec",
}


@pytest.mark.parametrize("name", sorted(DENIALS))
def test_judge_operator_on_each_operators_refusal(name: str) -> None:
    case = CASES[name]
    denied = ClusterError(DENIALS[name], 403)
    ready = {"type": case.ready_condition, "status": "True"}
    status, message = judge_operator(denied, ready, case)
    assert status is Status.PASSED
    assert case.operator in message
    assert case.rule in message
    assert f"{case.ready_condition}=True" in message
    assert judge_operator(denied, {**ready, "status": "False"}, case)[0] is Status.FAILED
    assert judge_operator(denied, None, case)[0] is Status.FAILED
    assert judge_operator(None, ready, case)[0] is Status.FAILED  # accepted: no webhook


def test_judge_operator_tells_an_absent_or_unreachable_webhook_from_a_schema_refusal() -> None:
    ray, trainer = CASES["kuberay"], CASES["trainer"]
    ready = {"type": "Complete", "status": "True"}
    status, message = judge_operator(None, None, ray)
    assert status is Status.FAILED
    assert "registers no webhook" in message
    down = ClusterError('Internal error occurred: failed calling webhook "validator.trainjob.trainer.kubeflow.org": '
                        'failed to call webhook: Post "https://kubeflow-trainer-controller-manager.kubeflow-system.svc:'
                        '443/validate-trainer-kubeflow-org-v1alpha1-trainjob?timeout=10s": dial tcp 10.96.0.12:443: '
                        "connect: connection refused", 500)
    status, message = judge_operator(down, ready, trainer)
    assert status is Status.FAILED
    assert "could not be called" in message
    schema = ClusterError('TrainJob.trainer.kubeflow.org "x" is invalid: spec.runtimeRef.name: Required value', 422)
    status, message = judge_operator(schema, ready, trainer)
    assert status is Status.FAILED
    assert "not by a webhook" in message


# -- run() on a cluster serving some operators ---------------------------------------------------------------
P = "kaic-0000abc123"  # the probe's prefix for S.run_id
TYPES = {
    "trainer": [ApiResource("trainer.kubeflow.org", "v1alpha1", "TrainJob", "trainjobs", True),
                ApiResource("trainer.kubeflow.org", "v1alpha1", "TrainingRuntime", "trainingruntimes", True)],
    "kuberay": [ApiResource("ray.io", "v1", "RayCluster", "rayclusters", True)],
    "jobset": [ApiResource("jobset.x-k8s.io", "v1alpha2", "JobSet", "jobsets", True)],
    "lws": [ApiResource("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets", True)],
    "kserve": [ApiResource("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True)],
    "kueue": [ApiResource("kueue.x-k8s.io", "v1beta1", "ClusterQueue", "clusterqueues", False),
              ApiResource("kueue.x-k8s.io", "v1beta1", "ResourceFlavor", "resourceflavors", False)],
    "kaito": [ApiResource("kaito.sh", "v1alpha1", "Workspace", "workspaces", True)],
}


class OperatorCluster(FakeCluster):
    """Serves the APIs of `installed`; their webhooks refuse what the real ones would (those in `no_webhook`
    admit everything), their controllers set the ready condition on a read (those in `stuck` never do);
    `forbidden` kinds are refused by RBAC. Every create and delete is kept."""

    def __init__(self, installed: tuple[str, ...], no_webhook: tuple[str, ...] = (), stuck: tuple[str, ...] = (),
                 forbidden: tuple[str, ...] = (), refuse_valid: dict[str, int] | None = None) -> None:
        self.installed, self.no_webhook, self.stuck, self.forbidden = installed, no_webhook, stuck, forbidden
        self.refuse_valid = dict(refuse_valid or {})  # kind -> how many creates of its valid object are refused
        super().__init__([], validate=False)
        self.deleted: list[tuple[str, str, str | None]] = []

    def api_resources(self) -> list[ApiResource]:
        return [*super().api_resources(), *(r for name in self.installed for r in TYPES[name])]

    def create(self, obj: Obj) -> Obj:
        kind = str(obj["kind"])
        if kind in self.forbidden:
            raise ClusterError(f'{kind.lower()}s is forbidden: User "system:serviceaccount:kaic:kaic-steps" cannot '
                               "create resource", 403)
        if not any(KINDS[n] == kind for n in self.no_webhook):
            admit(obj, self, ALL_WEBHOOKS)
        if self.refuse_valid.get(kind, 0) > 0:  # a webhook whose cache lags, or that wants what kaic cannot give
            self.refuse_valid[kind] -= 1
            raise ClusterError(f'admission webhook "{ALL_WEBHOOKS[kind][0]}" denied the request: validation failed: '
                               "missing field(s): resource.instanceType", 403)
        return super().create(obj)

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        obj = super().get(group_version, plural, name, namespace)
        if obj is not None and not any(KINDS[n] == obj["kind"] for n in self.stuck):
            condition = next(c.ready_condition for c in OPERATORS if KINDS[c.name] == obj["kind"]) \
                if obj["kind"] in KINDS.values() else None
            if condition:
                obj["status"] = {"conditions": [{"type": condition, "status": "True", "reason": "Ready"}]}
        return obj

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self.deleted.append((plural, name, namespace))
        super().delete(group_version, plural, name, namespace)

    def left(self) -> list[tuple[str, str, str, str]]:
        return [k for k in self.objects if k[1] not in ("nodes", "pods")]


def _clock() -> Clock:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    return Clock(1.0, lambda: t[0], sleep)


def _run(cluster: OperatorCluster, operators: tuple[str, ...] | None = None) -> Any:
    return OperatorWebhook(cluster, S, operators, _clock()).run()


def test_the_first_installed_operator_that_passes_passes_the_row() -> None:
    cluster = OperatorCluster(("jobset", "lws", "kueue"), stuck=("jobset",))
    out = _run(cluster)
    assert out.status is Status.PASSED
    assert out.message.startswith("LeaderWorkerSet: its webhook refused")
    assert "(tried 2: JobSet: failed; LeaderWorkerSet: passed)" in out.message
    evidence = out.evidence or ""
    assert evidence.index("JobSet [failed]") < evidence.index("LeaderWorkerSet [passed]")
    assert 'admission webhook "vjobset.kb.io" denied the request' in evidence
    assert "Completed=never" in evidence
    assert "Available=True (Ready)" in evidence
    assert "not installed: Kubeflow Trainer, KubeRay" in evidence
    assert "not tried (one passed): KServe, Kueue, KAITO" in evidence
    assert not [c for c in cluster.created if c["kind"] == "ClusterQueue"]  # stopped at the first pass
    assert cluster.left() == []


def test_an_operator_without_its_webhook_fails_and_the_next_is_tried() -> None:
    cluster = OperatorCluster(("kuberay", "kserve"), no_webhook=("kuberay",))
    out = _run(cluster)
    assert out.status is Status.PASSED
    assert "KubeRay: failed; KServe: passed" in out.message
    assert f"invalid {P}-kuberay-invalid (two workerGroupSpecs share a groupName) -> accepted; valid object not " \
           "tried" in (out.evidence or "")
    assert [c["metadata"]["name"] for c in cluster.created if c["kind"] == "RayCluster"] == \
        [f"{P}-kuberay-invalid"]  # no wait for a controller once the webhook failed
    assert ("rayclusters", f"{P}-kuberay-invalid", "kaic") in cluster.deleted
    assert cluster.left() == []


def test_every_operator_failing_fails_the_row_with_each_result() -> None:
    cluster = OperatorCluster(("trainer", "kaito"), stuck=("trainer",), no_webhook=("kaito",))
    out = _run(cluster)
    assert out.status is Status.FAILED
    assert "(tried 2: Kubeflow Trainer: failed; KAITO: failed)" in out.message
    assert "was not reconciled to Complete" in out.message
    assert "KAITO: an invalid workspaces object" in out.message
    assert "kaito.sh/v1alpha1 workspaces in kaic" in (out.evidence or "")  # the version it serves
    assert ("trainingruntimes", f"{P}-trainer-valid-runtime", "kaic") in cluster.deleted
    assert cluster.left() == []


def test_the_profiles_list_orders_and_restricts_and_cluster_scoped_objects_are_cleaned() -> None:
    cluster = OperatorCluster(("jobset", "kueue"))
    out = _run(cluster, ("kueue", "jobset"))
    assert out.status is Status.PASSED
    assert out.message.startswith("Kueue:")
    assert "not tried (one passed): JobSet" in (out.evidence or "")
    assert ("clusterqueues", f"{P}-kueue-invalid", None) in cluster.deleted
    assert ("resourceflavors", f"{P}-kueue-flavor", None) in cluster.deleted
    assert [(c["kind"], c["metadata"]["name"]) for c in cluster.created] == [
        ("ResourceFlavor", f"{P}-kueue-flavor"), ("ClusterQueue", f"{P}-kueue-valid")]  # the invalid one refused
    assert cluster.left() == []
    only = _run(OperatorCluster(("jobset", "kueue")), ("jobset",))
    assert only.message.startswith("JobSet:")
    assert "Kueue" not in (only.evidence or "")


def test_a_refused_valid_object_is_an_error_for_that_operator_only() -> None:
    cluster = OperatorCluster(("trainer", "jobset"), forbidden=("TrainingRuntime",))
    out = _run(cluster)
    assert out.status is Status.PASSED
    assert "Kubeflow Trainer: error; JobSet: passed" in out.message
    assert "trainingruntimes is forbidden" in (out.evidence or "")
    assert cluster.left() == []


def test_a_valid_object_refused_at_first_is_retried_then_an_error() -> None:
    lagging = OperatorCluster(("trainer",), refuse_valid={"TrainJob": 2})  # the runtime not yet in its cache
    assert _run(lagging).status is Status.PASSED
    cluster = OperatorCluster(("kaito", "jobset"), refuse_valid={"Workspace": 10**6})  # node auto-provisioning on
    out = _run(cluster, ("kaito", "jobset"))
    assert out.status is Status.PASSED
    assert "KAITO: error; JobSet: passed" in out.message
    assert "the valid object was refused too: admission webhook" in (out.evidence or "")
    assert cluster.left() == []


def test_nothing_installed_is_skipped_with_what_kaic_can_probe() -> None:
    out = _run(OperatorCluster(()))
    assert out.status is Status.SKIPPED
    assert out.message == ("no operator kaic can probe is installed (probes exist for: Kubeflow Trainer, KubeRay, "
                           "JobSet, LeaderWorkerSet, KServe, Kueue, KAITO)")
    assert _run(OperatorCluster(("jobset",)), ("lws",)).status is Status.SKIPPED  # restricted to one not installed


def test_an_unknown_operator_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        OperatorWebhook(OperatorCluster(()), S, ("ray",))


# -- the profile ---------------------------------------------------------------------------------------
BASE = {"name": "p", "platform": "onprem", "probes": {"operator_webhook": True}}


def test_the_profile_names_operators_in_order_and_the_step_gets_them() -> None:
    args = argparse.Namespace(cluster_snapshot=None, kubeconfig=None, context=None, no_active=False)
    data = load_profile("eks").model_dump()
    assert parse_profile(data, "t").probes.operators is None  # default: all
    assert make_config(args, parse_profile(data, "t")).operators is None
    data["probes"]["operators"] = ["kuberay", "trainer"]
    assert parse_profile(data, "t").probes.operators == ("kuberay", "trainer")
    assert make_config(args, parse_profile(data, "t")).operators == ("kuberay", "trainer")


@pytest.mark.parametrize(("value", "why"), [
    (["ray"], "probes.operators.0"), (["lws", "lws"], "names an operator twice"), ([], "probes.operators")])
def test_a_bad_operator_list_is_a_one_line_error(value: list[str], why: str) -> None:
    data = copy.deepcopy(BASE)
    data["probes"]["operators"] = value
    with pytest.raises(ConfigError, match=why) as exc:
        parse_profile(data, "t")
    assert "\n" not in str(exc.value)
