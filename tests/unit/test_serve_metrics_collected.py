"""`serve.metrics_collected` (ai_service_metrics): the cluster's Prometheus must report the served requests."""

from __future__ import annotations

from typing import Any

import pytest

from kaic.results import Outcome, Status
from steps.serve import prom

pytestmark = pytest.mark.unit


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _api(values: list[float]) -> Any:
    """A Prometheus /api/v1/query answer per call, the counter growing as scrapes land."""
    calls: list[dict[str, str]] = []

    def get(url: str, params: dict[str, str]) -> dict[str, Any]:
        calls.append(params)
        v = values[min(len(calls) - 1, len(values) - 1)]
        return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, str(v)]}]}}

    get.calls = calls  # type: ignore[attr-defined]
    return get


def test_passes_once_a_scrape_has_collected_every_request() -> None:
    clock = _Clock()
    get = _api([0, 1200, 2800])
    out = prom.query_collected("http://prom:9090", prom.collected_query("digits", "kaic"), 2800, 60, get,
                               poll_s=5, clock=clock, sleep=clock.sleep)
    assert out.status is Status.PASSED, out.message
    assert out.value == 2800
    assert get.calls[0]["query"] == 'sum(request_predict_seconds_count{model_name="digits",namespace="kaic"})'
    assert clock.t == 10  # two polls waited


def test_fails_at_the_deadline_when_monitoring_never_collects_them() -> None:
    clock = _Clock()
    out = prom.query_collected("http://prom:9090", "q", 2800, 30, _api([0.0]), poll_s=5, clock=clock,
                               sleep=clock.sleep)
    assert out.status is Status.FAILED
    assert "fewer than the 2800 requests" in out.message


def test_an_unreachable_api_fails_with_its_error() -> None:
    clock = _Clock()

    def down(url: str, params: dict[str, str]) -> dict[str, Any]:
        raise ConnectionError("connection refused")

    out = prom.query_collected("http://prom:9090", "q", 10, 10, down, poll_s=5, clock=clock, sleep=clock.sleep)
    assert out.status is Status.FAILED
    assert "connection refused" in out.message


def test_skipped_without_a_prometheus_url_or_unverified_server_metrics() -> None:
    exposed = Outcome("serve.service_metrics", Status.PASSED, "", metric="serve_metrics_requests_counted", value=5)
    assert prom.collection_outcome([exposed], None, "digits", "kaic", 1).status is Status.SKIPPED
    failed = Outcome("serve.service_metrics", Status.FAILED, "not exposed")
    out = prom.collection_outcome([failed], "http://prom:9090", "digits", "kaic", 1)
    assert out.status is Status.SKIPPED
    assert "serve.service_metrics" in out.message
