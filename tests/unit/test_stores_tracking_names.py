"""The pure parts of MLflow tracking: metric names, row fingerprints, the protocol, no secrets shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kaic.results import Level, ResultRow, Status
from kaic.stores import Tracker
from kaic.tracking import MlflowTracker, metric_name, rows_digest

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def row(metric: str | None, check: str = "train.allreduce", value: float | None = 1.0) -> ResultRow:
    return ResultRow("r", "0.1.0", T0, "local", "", "", "", "train", check, None, Level.INFO, Status.PASSED,
                     metric=metric, value=value, recorded_at=T0)


@pytest.mark.parametrize(("metric", "name"), [
    ("allreduce_busbw_gbps@64MiB", "allreduce_busbw_gbps/64MiB"),
    ("loss_curve@3", "loss_curve/3"),
    ("serve_p99_ms@concurrency=8", "serve_p99_ms/concurrency_8"),
    ("train_samples_per_s", "train_samples_per_s"),
    ("weird@../x", "weird/x"),
    (None, "train.allreduce"),
])
def test_metric_names(metric: str | None, name: str) -> None:
    assert metric_name(row(metric)) == name


def test_rows_digest_is_order_independent_and_value_sensitive() -> None:
    a, b = row("m1"), row("m2")
    assert rows_digest([a, b]) == rows_digest([b, a])
    assert rows_digest([a]) != rows_digest([row("m1", value=2.0)])


class FakeTracker:
    def __init__(self) -> None:
        self.logged: list[str] = []

    def log_step(self, ctx: object, step: str, rows: object, artifacts: object = ()) -> bool:
        self.logged.append(step)
        return True


def test_protocol_conformance() -> None:
    assert isinstance(MlflowTracker("sqlite:///x.db"), Tracker)
    assert isinstance(FakeTracker(), Tracker)


def test_repr_hides_credentials_in_the_uri() -> None:
    t = MlflowTracker("https://user:s3cret@mlflow.example.com")
    assert "s3cret" not in repr(t)
    assert t.uri_shown == "https://***@mlflow.example.com"
