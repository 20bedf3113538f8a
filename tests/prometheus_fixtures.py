"""What the real-Prometheus tests share (integration: a static target; e2e: discovery through the dev
cluster): the Go-built binary and the tiny served model as fixtures, which the integration and e2e conftests
import, and `send_requests`: real V2 requests through kaic's own load driver, with a short plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.devcluster.build import PROMETHEUS
from kaic.results import Outcome, Status
from steps.serve import exercise
from steps.serve.export import ExportedModel
from steps.serve.parity import read_holdout
from steps.serve.tiny_model import write_tiny_model

PLAN = exercise.LoadPlan(concurrency=(1, 2), warmup_s=0.2, duration_s=1.0, request_timeout_s=10,
                         max_requests=100_000, batch=1, parity_batch=64, parity_rtol=1e-3, parity_atol=1e-3)


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    path = PROMETHEUS.path("prometheus")
    if not path.is_file():
        pytest.skip(f"no prometheus at {path}: `make cluster-build` builds it "
                    f"({PROMETHEUS.module}@{PROMETHEUS.version})")
    return path


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> ExportedModel:
    d = write_tiny_model(tmp_path_factory.mktemp("model"))
    return ExportedModel(d, "digits", 64, read_holdout(str(d / "holdout_predictions.parquet")))


def send_requests(endpoint: exercise.Endpoint, model: ExportedModel) -> tuple[list[Outcome], float]:
    """Real V2 requests to `endpoint`; the serve step's checks and how many requests the server counted
    (its own `/metrics`, `serve.service_metrics`), which must be some."""
    checks = exercise.exercise(endpoint, endpoint, model, PLAN, lambda _: None)
    counted = next(c for c in checks if c.check_id == "serve.service_metrics")
    assert counted.status is Status.PASSED, counted.message
    assert counted.value is not None
    assert counted.value > 0
    return checks, counted.value
