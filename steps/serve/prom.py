"""Reading a Prometheus text exposition (what `/metrics` returns): pure functions over its text.

KServe 0.21's model server exposes, per model (label `model_name`), the histograms
`request_preprocess_seconds`, `request_predict_seconds`, `request_postprocess_seconds` (and
`request_explain_seconds`): `_count` is the number of requests, `_sum` their total time, `_bucket` the
latency distribution. The serve step checks that `request_predict_seconds_count` grows by at least the
number of inference requests it sent, and that `_sum` and `_bucket` are there (latency is collected).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

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
