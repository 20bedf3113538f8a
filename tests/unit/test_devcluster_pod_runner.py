"""The pod runner's pure parts: reading an Argo workflow pod (emissary unwrapping, the template, outputs, the
task result) and the kubelet's share (environment resolution, pod status). The pod below has the shape the
v4 workflow-controller builds in its default (legacy) layout."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kaic.devcluster import argo_pod, kubelet, plain_pod
from kaic.devcluster.argo_pod import NotEmulatedError, OutputError
from kaic.devcluster.kubelet import ConfigMissingError, Exit

pytestmark = pytest.mark.unit

TEMPLATE = {"name": "hello", "container": {"image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]},
            "outputs": {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p.txt"}},
                                       {"name": "q", "valueFrom": {"path": "/tmp/q.txt", "default": "dflt"}}]}}


def argo(template: dict[str, Any] = TEMPLATE, main_env: list[dict[str, Any]] | None = None,
         command: list[str] | None = None, args: list[str] | None = None) -> dict[str, Any]:
    common = [{"name": "ARGO_NODE_ID", "value": "wf-123"}, {"name": "ARGO_INCLUDE_SCRIPT_OUTPUT", "value": "true"}]
    return {
        "metadata": {"name": "wf-hello-123", "namespace": "ns", "uid": "pod-uid",
                     "labels": {"workflows.argoproj.io/workflow": "wf", "team": "a"},
                     "annotations": {"workflows.argoproj.io/node-id": "wf-123", "note": "n"},
                     "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "wf",
                                          "uid": "wf-uid"}]},
        "spec": {
            "nodeName": "kaic-runner", "serviceAccountName": "kaic-steps",
            "initContainers": [{"name": "init", "image": "argoexec", "command": ["argoexec", "init"],
                                "env": [{"name": "ARGO_TEMPLATE", "value": json.dumps(template)}, *common]}],
            "containers": [
                {"name": "wait", "image": "argoexec", "command": ["argoexec", "wait"], "env": common},
                {"name": "main", "image": "busybox",
                 "command": command or ["/var/run/argo/argoexec", "emissary", "--loglevel", "info", "--", "sh", "-c"],
                 "args": ["echo hi"] if args is None else args, "env": [*(main_env or []), *common],
                 "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m"}}},
            ]},
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def test_reads_the_argo_pod() -> None:
    ap = argo_pod.argo_pod(argo())
    assert (ap.namespace, ap.name, ap.workflow, ap.workflow_uid, ap.node_id) == ("ns", "wf-hello-123", "wf",
                                                                                 "wf-uid", "wf-123")
    assert ap.template["name"] == "hello"
    assert ap.include_script_output
    assert argo_pod.is_argo_pod(argo())
    assert not argo_pod.is_argo_pod({"metadata": {"labels": {}}})


def test_offloaded_template_comes_from_the_pods_configmap() -> None:
    pod = argo()
    pod["spec"]["initContainers"][0]["env"][0]["value"] = "offloaded"
    assert argo_pod.uses_offloaded(pod)
    assert argo_pod.argo_pod(pod, {"ARGO_TEMPLATE": json.dumps(TEMPLATE)}).template == TEMPLATE
    with pytest.raises(NotEmulatedError, match="ARGO_TEMPLATE"):
        argo_pod.argo_pod(pod, {})


def test_sidecars_are_refused_with_their_names() -> None:
    pod = argo()
    pod["spec"]["containers"].append({"name": "mysql", "image": "mysql"})
    with pytest.raises(NotEmulatedError, match=r"sidecar containers \['mysql'\]"):
        argo_pod.argo_pod(pod)


def test_emissary_is_unwrapped_to_the_original_command() -> None:
    assert argo_pod.main_argv(argo(), None, None) == ["sh", "-c", "echo hi"]
    assert argo_pod.unwrap_emissary(["echo"], ["plain"]) == ["echo", "plain"]
    assert argo_pod.main_argv(argo(), ["echo from file"], None) == ["sh", "-c", "echo from file"]
    with pytest.raises(NotEmulatedError, match="without `--`"):
        argo_pod.unwrap_emissary(["/var/run/argo/argoexec", "emissary", "sh"], [])
    with pytest.raises(NotEmulatedError, match="no command"):
        argo_pod.main_argv(argo(command=["/var/run/argo/argoexec", "emissary", "--"], args=[]), None, None)


def test_script_templates_run_the_staged_source_from_the_runners_file() -> None:
    script = {"name": "s", "script": {"image": "python", "command": ["python"], "source": "print(1)"}}
    pod = argo(script, command=["/var/run/argo/argoexec", "emissary", "--", "python"],
               args=["/argo/staging/script"])
    assert argo_pod.script_source(script) == "print(1)"
    assert argo_pod.main_argv(pod, None, "/pods/ns/p/script") == ["python", "/pods/ns/p/script"]


def test_outputs_as_the_wait_container_reports_them() -> None:
    files = {"/tmp/p.txt": "value\n"}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    out = argo_pod.collect_outputs(TEMPLATE, read, "hello\n\n")
    assert [(p["name"], p["value"]) for p in out["parameters"]] == [("p", "value"), ("q", "dflt")]
    assert out["result"] == "hello\n"  # one trailing newline trimmed, as the executor does
    assert "result" not in argo_pod.collect_outputs(TEMPLATE, read, None)
    files.clear()
    with pytest.raises(OutputError, match=r"output parameter p: cannot read /tmp/p\.txt: No such file"):
        argo_pod.collect_outputs(TEMPLATE, read, None)
    with pytest.raises(OutputError, match=r"output artifacts \(a\)"):
        argo_pod.collect_outputs({"outputs": {"artifacts": [{"name": "a", "path": "/x"}]}}, read, None)


def test_task_result_is_named_after_the_node_owned_by_the_workflow_and_complete() -> None:
    body = argo_pod.task_result(argo_pod.argo_pod(argo()), {"result": "r"})
    assert body["metadata"]["name"] == "wf-123"
    assert body["metadata"]["labels"] == {"workflows.argoproj.io/workflow": "wf",
                                          "workflows.argoproj.io/report-outputs-completed": "true"}
    assert body["metadata"]["ownerReferences"][0] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                                      "name": "wf", "uid": "wf-uid"}
    assert body["outputs"] == {"result": "r"}
    assert "outputs" not in argo_pod.task_result(argo_pod.argo_pod(argo()), {})


SECRETS: dict[tuple[str, str], dict[str, str]] = {
    ("secret", "kaic-object-store"): {"endpoint": "http://127.0.0.1:9000", "accessKey": "ak"},
    ("configmap", "settings"): {"mode": "fast", "level": "3"},
}


def lookup(kind: str, name: str) -> dict[str, str] | None:
    return SECRETS.get((kind, name))


def test_env_resolves_like_a_kubelet() -> None:
    env = [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)-b-$(MISSING)-$$(A)"},
        {"name": "EP", "valueFrom": {"secretKeyRef": {"name": "kaic-object-store", "key": "endpoint"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "kaic-object-store", "key": "nope", "optional": True}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
    ]
    pod = argo(main_env=env)
    pod["status"]["podIP"] = "127.0.0.1"
    main = argo_pod.container(pod, "main")
    assert main is not None
    main["envFrom"] = [{"configMapRef": {"name": "settings"}, "prefix": "S_"},
                       {"secretRef": {"name": "absent", "optional": True}}]
    got = kubelet.container_env(pod, main, lookup, {"cpu": "64", "memory": "256Gi"})
    assert got["B"] == "a-b-$(MISSING)-$(A)"
    assert got["EP"] == "http://127.0.0.1:9000"
    assert "OPT" not in got
    assert "OPT2" not in got
    assert (got["MODE"], got["S_mode"], got["S_level"]) == ("fast", "fast", "3")
    assert (got["POD"], got["NS"], got["TEAM"]) == ("wf-hello-123", "ns", "a")
    assert (got["NOTE"], got["IP"]) == ("n", "127.0.0.1")
    assert (got["MEM"], got["CPU"], got["REQ"]) == ("512", "64", "250")
    assert got["ARGO_NODE_ID"] == "wf-123"


@pytest.mark.parametrize(("ref", "message"), [
    ({"secretKeyRef": {"name": "absent", "key": "k"}}, 'secret "absent" not found'),
    ({"secretKeyRef": {"name": "kaic-object-store", "key": "nope"}}, "couldn't find key nope in Secret"),
    ({"configMapKeyRef": {"name": "settings", "key": "nope"}}, "couldn't find key nope in ConfigMap settings"),
])
def test_a_missing_required_reference_is_a_create_container_config_error(ref: dict[str, Any], message: str) -> None:
    pod = argo(main_env=[{"name": "X", "valueFrom": ref}])
    with pytest.raises(ConfigMissingError, match=message):
        kubelet.container_env(pod, argo_pod.container(pod, "main") or {}, lookup, {})


def test_secret_data_decodes_base64() -> None:
    assert kubelet.secret_data({"data": {"k": base64.b64encode(b"v").decode()}, "stringData": {"s": "t"}}) == \
        {"k": "v", "s": "t"}


def test_pod_statuses_carry_what_the_controller_reads() -> None:
    pod = argo()
    running = kubelet.running_status(pod, "2026-01-01T00:00:00Z", "127.0.0.1")
    assert running["phase"] == "Running"
    assert [s["name"] for s in running["initContainerStatuses"]] == ["init"]
    assert running["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert {s["name"]: list(s["state"]) for s in running["containerStatuses"]} == {"wait": ["running"],
                                                                                 "main": ["running"]}
    ok = kubelet.finished_status(pod, "t0", "t1", "127.0.0.1", {"main": Exit(0, "Completed"),
                                                                "wait": Exit(0, "Completed")})
    assert ok["phase"] == "Succeeded"
    assert "message" not in ok
    bad = kubelet.finished_status(pod, "t0", "t1", "127.0.0.1", {"main": Exit(3, "Error", "boom"),
                                                                 "wait": Exit(0, "Completed")})
    main = next(s for s in bad["containerStatuses"] if s["name"] == "main")
    assert bad["phase"] == "Failed"
    assert main["state"]["terminated"] == {"exitCode": 3, "reason": "Error", "message": "boom",
                                           "startedAt": "t0", "finishedAt": "t1"}
    exits = {"main": Exit(137, "Error"), "wait": Exit(0, "Completed")}
    late = kubelet.finished_status(pod, "t0", "t1", "127.0.0.1", exits, "DeadlineExceeded",
                                   "Pod was active on the node longer than the specified deadline")
    assert (late["phase"], late["reason"]) == ("Failed", "DeadlineExceeded")
    waiting = kubelet.waiting_status(pod, "t0", "127.0.0.1", "CreateContainerConfigError", 'secret "x" not found')
    assert waiting["phase"] == "Pending"
    assert waiting["containerStatuses"][1]["state"]["waiting"]["reason"] == "CreateContainerConfigError"


def test_submitting_from_the_template_through_the_kubernetes_api_is_argo_submit_from() -> None:
    from kaic.argo.kube import workflow_from_template

    wf = workflow_from_template("kaic-conformance", "kaic", {"suite": "full", "profile": "eks"})
    assert wf["metadata"]["generateName"] == "kaic-conformance-"
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "kaic-conformance"
    assert wf["spec"] == {"workflowTemplateRef": {"name": "kaic-conformance"},
                          "arguments": {"parameters": [{"name": "profile", "value": "eks"},
                                                       {"name": "suite", "value": "full"}]}}
    assert "arguments" not in workflow_from_template("t", "ns", {})["spec"]


def test_only_the_controllers_template_cache_miss_counts_as_unseen() -> None:
    from kaic.argo.kube import template_unseen

    # As the v4.1.4 workflow-controller wrote it on the Workflow in CI (status.message).
    seen_in_ci = 'workflowtemplates.argoproj.io "kaic-conformance" not found'
    assert template_unseen("Error", seen_in_ci, "kaic-conformance")
    assert not template_unseen("Error", seen_in_ci, "other")
    assert not template_unseen("Failed", seen_in_ci, "kaic-conformance")
    assert not template_unseen("Running", "", "kaic-conformance")
    assert not template_unseen(None, "", "kaic-conformance")
    assert not template_unseen("Error", 'invalid spec: templates.main not found', "kaic-conformance")


def test_the_controller_config_steers_every_workflow_pod_to_the_runner() -> None:
    from kaic.devcluster import argo
    from kaic.devcluster.pod_runner import LABEL, TAINT

    spec = argo.controller_config()["workflowDefaults"]["spec"]
    assert spec["nodeSelector"] == {LABEL: "true"}
    assert spec["tolerations"] == [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"],
                                    "effect": TAINT["effect"]}]
    cm = next(o for o in argo.manifests() if o["kind"] == "ConfigMap")
    assert (cm["metadata"]["namespace"], cm["metadata"]["name"]) == (argo.NAMESPACE, argo.CONFIGMAP)
    assert "nodeSelector" in cm["data"]["workflowDefaults"]


def plain(**container: Any) -> dict[str, Any]:
    c = {"name": "server", "image": "kserve/sklearnserver", "command": ["python", "-m", "srv"],
         "args": ["--port", "$(PORT)"], **container}
    return {"metadata": {"name": "srv-0", "namespace": "ns", "uid": "u"},
            "spec": {"nodeName": "kaic-runner", "containers": [c]}, "status": {"phase": "Pending"}}


def test_a_plain_pod_runs_its_one_containers_command() -> None:
    pod = plain(env=[{"name": "PORT", "value": "8080"}])
    assert not argo_pod.is_argo_pod(pod)
    c = plain_pod.container(pod)
    assert plain_pod.argv(c) == ["python", "-m", "srv", "--port", "$(PORT)"]
    env = kubelet.container_env(pod, c, lookup, {})
    assert [kubelet.expand(a, env) for a in plain_pod.argv(c)][-1] == "8080"
    running = kubelet.running_status(pod, "t0", "127.0.0.1")
    assert (running["phase"], running["podIP"]) == ("Running", "127.0.0.1")
    assert [(s["name"], s["ready"], list(s["state"])) for s in running["containerStatuses"]] == \
        [("server", True, ["running"])]
    assert running["initContainerStatuses"] == []
    done = kubelet.finished_status(pod, "t0", "t1", "127.0.0.1", {"server": Exit(0, "Completed")})
    assert done["phase"] == "Succeeded"


def test_plain_pods_of_other_shapes_are_refused_with_what_is_not_emulated() -> None:
    two = plain()
    two["spec"]["containers"].append({"name": "proxy", "image": "envoy", "command": ["envoy"]})
    with pytest.raises(NotEmulatedError, match=r"2 containers \['server', 'proxy'\].*exactly one container"):
        plain_pod.container(two)
    init = plain()
    init["spec"]["initContainers"] = [{"name": "storage-initializer", "image": "kserve/storage-initializer"}]
    with pytest.raises(NotEmulatedError, match=r"init containers \['storage-initializer'\]"):
        plain_pod.container(init)
    with pytest.raises(NotEmulatedError, match="'server' has no command"):
        plain_pod.container(plain(command=[]))
