"""Reading a Prometheus text exposition (what `/metrics` returns): pure functions over its text.

KServe 0.21's model server exposes, per model (label `model_name`), the histograms
`request_preprocess_seconds`, `request_predict_seconds`, `request_postprocess_seconds` (and
`request_explain_seconds`): `_count` is the number of requests, `_sum` their total time, `_bucket` the
latency distribution. The serve step checks that `request_predict_seconds_count` grows by at least the
number of inference requests it sent, and that `_sum` and `_bucket` are there (latency is exposed).

That the *platform* collects them (CNCF `ai_service_metrics`) is a separate check, `serve.metrics_collected`:
on a cluster, the Prometheus HTTP API named by the profile (`serving.prometheus_url`) must report the
predictor's request count; locally there is no monitoring system, so it is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kaic.results import Outcome, Status

PREDICT_HISTOGRAM = "request_predict_seconds"


@dataclass(frozen=True)
class HistogramSample:
    count: float
    total_s: float
    buckets: int  # number of `_bucket` series (0: no latency distribution exposed)


def histogram(text: str, name: str, labels: dict[str, str]) -> HistogramSample | None:
    """The `name` histogram's series whose labels include `labels`; None when it is not exposed."""
    count = total = None
    buckets = 0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for s in family.samples:
            if any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            if s.name == f"{name}_count":
                count = (count or 0.0) + s.value
            elif s.name == f"{name}_sum":
                total = (total or 0.0) + s.value
            elif s.name == f"{name}_bucket":
                buckets += 1
    if count is None:
        return None
    return HistogramSample(count, total or 0.0, buckets)


@dataclass(frozen=True)
class MetricsVerdict:
    ok: bool
    message: str
    grew_by: float


def judge_growth(
    before: HistogramSample | None, after: HistogramSample | None, sent: int, name: str = PREDICT_HISTOGRAM
) -> MetricsVerdict:
    """Did the server count (at least) the `sent` inference requests, with their latency?"""
    if after is None:
        return MetricsVerdict(False, f"{name} is not exposed on /metrics", 0.0)
    base = before.count if before else 0.0
    grew = after.count - base
    if after.buckets == 0 or (grew > 0 and after.total_s <= (before.total_s if before else 0.0)):
        return MetricsVerdict(False, f"{name}: count exposed but no latency (buckets/sum) collected", grew)
    if grew < sent:
        return MetricsVerdict(
            False, f"{name}_count grew by {grew:g}, fewer than the {sent} requests sent", grew
        )
    return MetricsVerdict(
        True,
        f"{name}_count grew by {grew:g} for {sent} requests sent; "
        f"{after.buckets} latency buckets, mean {after.total_s / after.count * 1e3:.2f} ms",
        grew,
    )


COLLECTED_CHECK = "serve.metrics_collected"


def collected_query(model: str, namespace: str, name: str = PREDICT_HISTOGRAM) -> str:
    """PromQL for the requests the cluster's monitoring collected from this run's predictor pods."""
    return f'sum({name}_count{{model_name="{model}",namespace="{namespace}"}})'


def query_collected(
    prometheus_url: str,
    query: str,
    want: float,
    deadline_s: float,
    get: Callable[[str, dict[str, str]], dict[str, Any]],
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Poll the Prometheus HTTP API until it reports at least `want` requests (scrapes lag) or the deadline.

    Passing proves the platform's monitoring discovered the served model and collected its request count;
    `get(url, params)` returns the decoded JSON of `GET /api/v1/query`."""
    url = prometheus_url.rstrip("/") + "/api/v1/query"
    started, seen, last_error = clock(), 0.0, ""
    while True:
        try:
            body = get(url, {"query": query})
            result = (body.get("data") or {}).get("result") or []
            seen = sum(float(r["value"][1]) for r in result)
            last_error = ""
        except Exception as exc:  # an unreachable or malformed API is reported, then retried until the deadline
            last_error = f"{type(exc).__name__}: {exc}"
        if seen >= want > 0:
            return Outcome(COLLECTED_CHECK, Status.PASSED,
                           f"{prometheus_url}: {query} = {seen:g} (at least the {want:g} requests served)",
                           metric="serve_metrics_requests_collected", value=seen, unit="requests",
                           evidence=f"{url}?query={query}")
        if clock() - started >= deadline_s:
            why = last_error or f"{query} = {seen:g}, fewer than the {want:g} requests the server counted"
            return Outcome(COLLECTED_CHECK, Status.FAILED, f"{prometheus_url}: after {deadline_s:g}s: {why}",
                           metric="serve_metrics_requests_collected", value=seen, unit="requests")
        sleep(poll_s)


def collection_outcome(
    checks: list[Outcome], prometheus_url: str | None, model: str, namespace: str, deadline_s: float
) -> Outcome:
    """`serve.metrics_collected` on a cluster, from what `serve.service_metrics` saw the server count."""
    if prometheus_url is None:
        return Outcome.skipped(COLLECTED_CHECK, "profile serving.prometheus_url is not set: cannot ask the "
                               "cluster's monitoring whether it collected the model's metrics")
    exposed = next((c for c in checks if c.check_id == "serve.service_metrics"), None)
    if exposed is None or exposed.status is not Status.PASSED or not exposed.value:
        return Outcome.skipped(COLLECTED_CHECK, "the server's own metrics were not verified (serve.service_metrics)")

    def get(url: str, params: dict[str, str]) -> dict[str, Any]:
        response = httpx.get(url, params=params, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return query_collected(prometheus_url, collected_query(model, namespace), exposed.value, deadline_s, get)
