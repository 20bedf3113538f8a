"""The Argo client's pure parts: URL checks, the token from the environment, -p parsing, and the wait loop's
deadline (driven with a fake clock through a stand-in for `get_workflow`, the one call it makes)."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hera.workflows import models as m

from kaic.argo import argo_token, check_url, wait_for_workflow
from kaic.argo.cli import parse_parameters
from kaic.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("url", "normalised"), [
    ("https://argo.example.com:2746", "https://argo.example.com:2746/"),
    ("http://127.0.0.1:2746/", "http://127.0.0.1:2746/"),
    ("https://example.com/argo", "https://example.com/argo/"),
])
def test_good_urls(url: str, normalised: str) -> None:
    assert check_url(url) == normalised


@pytest.mark.parametrize("url", ["argo:2746", "ftp://x", "https://", "http://h:99999", "https://h/?q=1", ""])
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match=r"--argo-server .*not an Argo Server URL"):
        check_url(url)


def test_token_from_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAIC_ARGO_TOKEN", raising=False)
    monkeypatch.delenv("KAIC_ARGO_TOKEN_FILE", raising=False)
    assert argo_token() is None
    f = tmp_path / "t"
    f.write_text("from-file\n")
    monkeypatch.setenv("KAIC_ARGO_TOKEN_FILE", str(f))
    assert argo_token() == "from-file"
    monkeypatch.setenv("KAIC_ARGO_TOKEN", "from-env")
    assert argo_token() == "from-env"


def test_unreadable_token_file_names_the_variable_not_the_token(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAIC_ARGO_TOKEN", raising=False)
    monkeypatch.setenv("KAIC_ARGO_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"KAIC_ARGO_TOKEN_FILE .*missing: cannot read"):
        argo_token()
    (tmp_path / "empty").write_text("  \n")
    monkeypatch.setenv("KAIC_ARGO_TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="is empty"):
        argo_token()


def test_parameters() -> None:
    assert parse_parameters(["suite=full", "object-store=s3://b/p?x=1", "platform="]) == {
        "suite": "full", "object-store": "s3://b/p?x=1", "platform": ""}
    for bad, message in [("suite", "expected NAME=VALUE"), ("suite=huge", "suite must be quick or full"),
                         ("gpus=8", "unknown workflow parameter 'gpus'")]:
        with pytest.raises(ConfigError, match=message):
            parse_parameters([bad])


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _workflow(phase: str, nodes: dict[str, str]) -> m.Workflow:
    status = m.WorkflowStatus(phase=phase, nodes={
        n: m.NodeStatus(id=n, name=f"wf.{n}", type="Pod", phase=p) for n, p in nodes.items()})
    return m.Workflow(metadata=m.ObjectMeta(name="wf"), spec=m.WorkflowSpec(), status=status)


def _service(states: list[m.Workflow]) -> Any:
    calls = iter(states)
    return SimpleNamespace(host="http://fake/", session=None,
                           get_workflow=lambda name, namespace: next(calls, states[-1]))


def test_wait_stops_at_the_deadline_not_after() -> None:
    clock, out = _Clock(), io.StringIO()
    service = _service([_workflow("Running", {"train": "Running"})])
    result = wait_for_workflow(service, "wf", "ns", timeout_s=10, poll_s=3, out=out, clock=clock,
                               sleep=clock.sleep, now=lambda: datetime(2026, 1, 1))
    assert result.timed_out
    assert result.exit_code == 1
    assert clock.t == 10  # slept 3+3+3+1: never past the deadline
    assert out.getvalue() == "00:00:00  Running    wf.train\n"  # printed once, not on every poll


def test_wait_prints_changes_and_maps_final_phases() -> None:
    states = [_workflow("Pending", {}), _workflow("Running", {"data": "Running"}),
              _workflow("Failed", {"data": "Failed", "train": "Omitted"})]
    clock, out = _Clock(), io.StringIO()
    result = wait_for_workflow(_service(states), "wf", "ns", timeout_s=60, poll_s=1, out=out, clock=clock,
                               sleep=clock.sleep, now=lambda: datetime(2026, 1, 1, 12, 0, 1))
    assert (result.phase, result.timed_out, result.exit_code) == ("Failed", False, 1)
    assert out.getvalue().splitlines() == ["12:00:01  Running    wf.data", "12:00:01  Failed     wf.data",
                                           "12:00:01  Omitted    wf.train"]
