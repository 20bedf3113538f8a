"""`kaic submit` and `kaic schedule` against the fake Argo Server (real HTTP, requests checked against
Argo's swagger.json), driven through the real CLI entry point."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaic.argo import connect, submit_and_wait
from kaic.argo.apply import submit_from_template
from kaic.cli import main
from kaic.errors import ConfigError
from kaic.profiles import load_profile
from pipelines.config import PipelineConfig
from pipelines.conformance import build_workflow
from tests.conftest import shared_path
from tests.integration.fake_argo import FakeArgoServer, serve

pytestmark = pytest.mark.integration

TOKEN = "kaic-test-token-5f2a9c"
NS = "kaic"
NODE_LINE = re.compile(r"^\d\d:\d\d:\d\d  (\w+)\s+(kaic-conformance-\w+\.[\w]+)$", re.MULTILINE)


@pytest.fixture
def swagger() -> Path:
    return shared_path("reference", "argo-workflows", "swagger.json")


@pytest.fixture
def argo(swagger: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeArgoServer]:
    monkeypatch.setenv("KAIC_ARGO_TOKEN", TOKEN)
    monkeypatch.delenv("KAIC_ARGO_TOKEN_FILE", raising=False)
    with serve(swagger, token=TOKEN) as fake:
        yield fake


def load(profile: str) -> PipelineConfig:
    return PipelineConfig.from_profile(load_profile(profile), profile)


def kaic(*args: str) -> int:
    return main(list(args))


def submit(fake: FakeArgoServer, *extra: str) -> int:
    return kaic("submit", "--argo-server", fake.url, "--namespace", NS, "--poll", "0.01", *extra)


def test_submit_creates_the_template_then_a_workflow_from_it(argo: FakeArgoServer,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert submit(argo) == 0
    out = capsys.readouterr().out
    assert "WorkflowTemplate kaic/kaic-conformance created" in out
    template = argo.objects[("WorkflowTemplate", NS, "kaic-conformance")]
    assert template["metadata"]["uid"]
    assert template["metadata"]["creationTimestamp"]
    server_set = ("uid", "resourceVersion", "creationTimestamp", "generation", "namespace")
    sent = {**template, "metadata": {k: v for k, v in template["metadata"].items() if k not in server_set}}
    assert sent == build_workflow(load("generic")).to_dict()  # nothing lost on the way
    workflows = [k for k in argo.objects if k[0] == "Workflow"]
    assert len(workflows) == 1
    name = workflows[0][2]
    assert f"submitted Workflow kaic/{name}" in out
    wf = argo.objects[workflows[0]]
    assert wf["spec"]["workflowTemplateRef"] == {"name": "kaic-conformance"}
    assert [(r.method, r.path, r.status) for r in argo.requests] == [
        ("POST", "/api/v1/workflow-templates/kaic", 200),
        ("POST", "/api/v1/workflows/kaic/submit", 200),
    ]


def test_second_submit_updates_the_template_with_its_resource_version(
        argo: FakeArgoServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert submit(argo) == 0
    first = argo.objects[("WorkflowTemplate", NS, "kaic-conformance")]["metadata"]["resourceVersion"]
    assert submit(argo, "--image", "registry.example/kaic:dev") == 0
    assert "WorkflowTemplate kaic/kaic-conformance updated" in capsys.readouterr().out
    live = argo.objects[("WorkflowTemplate", NS, "kaic-conformance")]
    assert live["metadata"]["resourceVersion"] != first
    assert live["metadata"]["generation"] == 2
    image = next(p for p in live["spec"]["arguments"]["parameters"] if p["name"] == "image")
    assert image["value"] == "registry.example/kaic:dev"
    # create (409 AlreadyExists), read, update: what create-or-update must do against Argo
    assert [(r.method, r.status) for r in argo.requests[2:5]] == [("POST", 409), ("GET", 200), ("PUT", 200)]


def test_submit_wait_prints_node_phases_and_succeeds(argo: FakeArgoServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert submit(argo, "--wait", "--timeout", "30", "-p", "suite=full") == 0
    out = capsys.readouterr().out
    phases = NODE_LINE.findall(out)
    name = next(k[2] for k in argo.objects if k[0] == "Workflow")
    assert ("Running", f"{name}.train") in phases
    assert ("Succeeded", f"{name}.train") in phases
    assert ("Succeeded", f"{name}.onExit") in phases  # teardown ran as the exit handler
    assert phases.index(("Succeeded", f"{name}.provision")) < phases.index(("Running", f"{name}.data"))
    assert out.rstrip().endswith(f"Workflow kaic/{name} Succeeded")
    assert argo.objects[("Workflow", NS, name)]["spec"]["arguments"]["parameters"] == [
        {"name": "suite", "value": "full"}]


def test_a_failed_step_omits_its_dependents_still_reports_and_exits_1(
        swagger: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAIC_ARGO_TOKEN", raising=False)
    with serve(swagger, outcomes={"data": "Failed"}) as fake:
        assert submit(fake, "--wait", "--timeout", "30") == 1
    out = capsys.readouterr().out
    final = {node.split(".")[-1]: phase for phase, node in NODE_LINE.findall(out)}
    assert final == {"provision": "Succeeded", "data": "Failed", "train": "Omitted", "serve": "Omitted",
                     "report": "Succeeded", "onExit": "Succeeded"}
    assert re.search(r"Workflow kaic/kaic-conformance-\w+ Failed", out)


def test_wait_times_out_within_the_timeout_with_a_clear_message(
        swagger: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAIC_ARGO_TOKEN", raising=False)
    with serve(swagger, hang=True) as fake:
        started = time.monotonic()
        code = submit(fake, "--wait", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert code == 1
    err = capsys.readouterr().err
    assert "timed out after 1s" in err
    assert "last phase Running" in err
    assert "still running" in err
    assert elapsed < 1 + 5  # the deadline is enforced (slack for a loaded 2-core machine)


def test_token_is_sent_as_bearer_and_never_printed(
        argo: FakeArgoServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert submit(argo, "--wait", "--timeout", "30") == 0
    assert argo.requests
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in argo.requests)
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err


def test_token_from_file(swagger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    monkeypatch.delenv("KAIC_ARGO_TOKEN", raising=False)
    monkeypatch.setenv("KAIC_ARGO_TOKEN_FILE", str(token_file))
    with serve(swagger, token=TOKEN) as fake:
        assert submit(fake) == 0
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert TOKEN not in "".join(capsys.readouterr())


def test_refused_token_is_bad_configuration_and_not_echoed(
        swagger: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAIC_ARGO_TOKEN", "wrong-token-77")
    with serve(swagger, token=TOKEN) as fake:
        assert submit(fake) == 2
    err = capsys.readouterr().err
    assert "refused the credentials (401)" in err
    assert "KAIC_ARGO_TOKEN" in err
    assert "wrong-token-77" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_server_exits_1_and_malformed_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert kaic("submit", "--argo-server", f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Argo Server at http://127.0.0.1:{port}/" in err
    assert kaic("submit", "--argo-server", "127.0.0.1:2746") == 2
    assert "not an Argo Server URL" in capsys.readouterr().err


def test_unknown_parameter_is_refused_before_any_request(argo: FakeArgoServer,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert submit(argo, "-p", "wolrd-size=4") == 2
    assert "unknown workflow parameter 'wolrd-size'" in capsys.readouterr().err
    assert argo.requests == []


def test_server_side_enum_check_becomes_a_config_error(argo: FakeArgoServer) -> None:
    service = connect(argo.url, NS, TOKEN)
    submit_and_wait(service, PipelineConfig(), namespace=NS, wait=False)
    with pytest.raises(ConfigError, match="not present in the list of enum"):
        submit_from_template(service, "kaic-conformance", NS, {"suite": "huge"})


def test_submit_and_wait_python_api(argo: FakeArgoServer) -> None:
    import io

    out = io.StringIO()
    service = connect(argo.url, NS, TOKEN)
    result = submit_and_wait(service, PipelineConfig(), namespace=NS, parameters={"world-size": "4"},
                             timeout_s=30, poll_s=0.01, out=out)
    assert result.exit_code == 0
    assert result.wait is not None
    assert result.wait.phase == "Succeeded"
    assert result.name in out.getvalue()


def test_schedule_creates_then_updates_the_cron_workflow(argo: FakeArgoServer,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = ("schedule", "--argo-server", argo.url, "--namespace", NS)
    assert kaic(*args) == 0
    out = capsys.readouterr().out
    assert "CronWorkflow kaic/kaic-conformance-nightly created: 0 2 * * * (UTC)" in out
    cron = argo.objects[("CronWorkflow", NS, "kaic-conformance-nightly")]
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"] == {"name": "kaic-conformance"}
    version = cron["metadata"]["resourceVersion"]

    assert kaic(*args, "--cron", "30 3 * * 1-5", "--timezone", "Europe/Paris", "-p", "suite=full") == 0
    assert "CronWorkflow kaic/kaic-conformance-nightly updated" in capsys.readouterr().out
    cron = argo.objects[("CronWorkflow", NS, "kaic-conformance-nightly")]
    assert cron["spec"]["schedules"] == ["30 3 * * 1-5"]
    assert cron["spec"]["timezone"] == "Europe/Paris"
    assert cron["spec"]["workflowSpec"]["arguments"]["parameters"] == [{"name": "suite", "value": "full"}]
    assert cron["metadata"]["resourceVersion"] != version
    assert ("WorkflowTemplate", NS, "kaic-conformance") in argo.objects  # the cron's template exists


def test_schedule_rejects_a_bad_cron_expression(
        argo: FakeArgoServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert kaic("schedule", "--argo-server", argo.url, "--cron", "every night") == 2
    assert "--cron: 'every night' is not a cron expression" in capsys.readouterr().err
    assert argo.requests == []


# ---- the fake itself answers as Argo would ---------------------------------------------------------
def test_fake_rejects_invalid_requests_as_argo_does(argo: FakeArgoServer) -> None:
    import requests

    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{argo.url}/api/v1/workflow-templates/{NS}"
    bad = requests.post(base, json={"template": {"metadata": {"name": "x"}, "spec": {"templates": "nope"}}},
                        headers=headers, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["code"] == 3
    assert "spec.templates" in bad.json()["message"]
    assert requests.get(f"{base}/missing", headers=headers, timeout=10).status_code == 404
    assert requests.get(f"{argo.url}/api/v1/nothing-here", headers=headers, timeout=10).status_code == 404
    assert requests.delete(f"{argo.url}/api/v1/workflows/{NS}/submit", headers=headers,
                           timeout=10).status_code == 405
    good: dict[str, Any] = {"template": {"metadata": {"name": "t"}, "spec": {"entrypoint": "a", "templates": [
        {"name": "a", "container": {"image": "busybox"}}]}}}
    assert requests.post(base, json=good, headers=headers, timeout=10).status_code == 200
    dup = requests.post(base, json=good, headers=headers, timeout=10)
    assert dup.status_code == 409
    assert "already exists" in dup.json()["message"]
    stale: dict[str, Any] = {
        "template": {**good["template"], "metadata": {"name": "t", "resourceVersion": "0"}}}
    assert requests.put(f"{base}/t", json=stale, headers=headers, timeout=10).status_code == 409
    dangling: dict[str, Any] = {
        "template": {"metadata": {"name": "u"}, "spec": {"entrypoint": "missing", "templates": []}}}
    assert requests.post(base, json=dangling, headers=headers, timeout=10).status_code == 400
