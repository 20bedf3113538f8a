"""Pure parts of the serve step: percentiles, level summaries, V2 bodies, parity, Prometheus parsing."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from kaic.results import Status
from steps.serve import exercise, loadgen, prom, v2
from steps.serve.parity import Holdout, compare

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 99.9, 100])
def test_percentile_matches_numpy_linear(n: int, q: float) -> None:
    rng = random.Random(n)
    values = sorted(rng.expovariate(1.0) for _ in range(n))
    assert loadgen.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_edges() -> None:
    assert math.isnan(loadgen.percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        loadgen.percentile([1.0], 101)


def test_summary_rates_and_errors() -> None:
    s = loadgen.summarize(
        4, [1_000_000, 2_000_000, 3_000_000, 4_000_000], errors=1, elapsed_s=2.0, statuses={200: 4, 500: 1}, total_ok=10
    )
    assert (s.ok, s.attempted, s.rps, s.error_rate) == (4, 5, 2.0, 0.2)
    assert (s.p50_ms, s.mean_ms, s.total_ok) == (2.5, 2.5, 10)
    assert loadgen.summarize(1, [], errors=0, elapsed_s=0).error_rate == 1.0  # nothing answered


def test_request_bytes_are_a_complete_keep_alive_post() -> None:
    body = v2.infer_body([[0.5] * 64], 64)
    raw = loadgen.http_request("127.0.0.1", 8080, "/v2/models/digits/infer", body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v2/models/digits/infer HTTP/1.1\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert rest == body
    assert b"Host: gw.example\r\n" in loadgen.http_request("10.0.0.1", 80, "/x", b"{}", host_header="gw.example")


def test_driver_refuses_remote_targets_unless_allowed() -> None:
    assert loadgen.is_loopback("127.0.0.1")
    assert loadgen.is_loopback("localhost")
    assert loadgen.is_loopback("::1")
    assert not loadgen.is_loopback("10.0.0.1")
    assert not loadgen.is_loopback("example.com")
    with pytest.raises(ValueError, match="not a loopback"):
        loadgen.drive("10.0.0.1", 80, [b"x"], 1, 1.0)


def test_v2_body_and_response_round_trip() -> None:
    doc = json.loads(v2.infer_body([[1.0, 2.0], [3.0, 4.0]], 2))
    assert doc["inputs"][0] | {"data": None} == {
        "name": v2.INPUT_NAME,
        "shape": [2, 2],
        "datatype": "FP32",
        "data": None,
    }
    assert doc["inputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="takes 2"):
        v2.infer_body([[1.0]], 2)
    resp = {
        "model_name": "digits",
        "outputs": [{"name": "logits", "shape": [2, 3], "datatype": "FP32", "data": [0, 1, 2, 5, 4, 3]}],
    }
    rows = v2.parse_logits(json.dumps(resp).encode())
    assert rows == [[0, 1, 2], [5, 4, 3]]
    assert [v2.argmax(r) for r in rows] == [2, 0]
    with pytest.raises(ValueError, match="shape"):
        v2.parse_logits({"outputs": [{"name": "logits", "shape": [2, 3], "data": [1]}]})
    with pytest.raises(ValueError, match="not a V2"):
        v2.parse_logits({"error": "boom"})


def _holdout() -> Holdout:
    return Holdout([10, 11], [[0.0], [0.0]], [1, 0], [[0.1, 0.9], [2.0, -1.0]])


def test_parity_passes_within_tolerance_and_names_mismatched_rows() -> None:
    h = _holdout()
    ok = compare(h, [[0.1000004, 0.9], [2.0, -1.0005]], rtol=1e-3, atol=1e-3)
    assert ok.ok
    assert ok.mismatched_rows == []
    assert ok.max_abs_diff == pytest.approx(5e-4)
    flipped = compare(h, [[0.9, 0.1], [2.0, -1.0]], rtol=1e-3, atol=1e-3)
    assert not flipped.ok
    assert flipped.mismatched_rows == [10]
    assert "mismatched rows [10]" in flipped.message(1e-3, 1e-3)
    drift = compare(h, [[0.1, 0.95], [2.0, -1.0]], rtol=1e-3, atol=1e-3)  # same argmax, logits moved
    assert drift.mismatched_rows == []
    assert not drift.ok
    with pytest.raises(ValueError, match="2 holdout rows"):
        compare(h, [[0.1, 0.9]], rtol=0, atol=0)


def _exposition(count: int, latencies: list[float]) -> str:
    """A real Prometheus text exposition from prometheus_client (what KServe's /metrics serves)."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    reg = CollectorRegistry()
    h = Histogram("request_predict_seconds", "predict request latency", ["model_name"], registry=reg)
    other = Histogram("request_preprocess_seconds", "pre", ["model_name"], registry=reg)
    for i in range(count):
        h.labels(model_name="digits").observe(latencies[i % len(latencies)])
        other.labels(model_name="digits").observe(0.001)
    h.labels(model_name="another").observe(1.0)
    return generate_latest(reg).decode()


def test_histogram_read_from_a_real_exposition() -> None:
    s = prom.histogram(_exposition(3, [0.001, 0.002]), prom.PREDICT_HISTOGRAM, {"model_name": "digits"})
    assert s is not None
    assert s.count == 3
    assert s.total_s == pytest.approx(0.004)
    assert s.buckets > 5
    assert prom.histogram(_exposition(1, [0.1]), prom.PREDICT_HISTOGRAM, {"model_name": "absent"}) is None
    assert prom.histogram("# nothing\n", prom.PREDICT_HISTOGRAM, {}) is None


def test_growth_verdicts() -> None:
    before = prom.histogram(_exposition(5, [0.001]), prom.PREDICT_HISTOGRAM, {"model_name": "digits"})
    after = prom.histogram(_exposition(105, [0.001]), prom.PREDICT_HISTOGRAM, {"model_name": "digits"})
    assert prom.judge_growth(before, after, 100).ok
    short = prom.judge_growth(before, after, 101)
    assert not short.ok
    assert "fewer than the 101" in short.message
    assert not prom.judge_growth(before, None, 1).ok
    assert prom.judge_growth(None, after, 105).ok


def test_load_outcomes_are_catalogued_rows_per_level() -> None:
    from kaic import catalog

    a = loadgen.summarize(1, [1_000_000] * 10, 0, 1.0, {200: 10})
    b = loadgen.summarize(4, [], 3, 1.0, {0: 3})
    rows = exercise.load_outcomes([a, b])
    metrics = {o.metric: o for o in rows}
    assert {
        "serve_p50_ms@c1",
        "serve_p95_ms@c1",
        "serve_p99_ms@c1",
        "serve_rps@c1",
        "serve_rps@c4",
        "serve_error_rate",
    } <= set(metrics)
    assert metrics["serve_error_rate"].value == pytest.approx(3 / 13)
    assert any(o.check_id == "serve.latency" and o.status is Status.ERROR for o in rows)  # c4 never answered
    for o in rows:
        spec = catalog.check(o.check_id)
        assert o.metric is None or any(m.matches(o.metric) for m in spec.metrics), o.metric
