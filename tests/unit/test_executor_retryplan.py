"""The pure retry plan: Argo's processNodeRetries order (maxDuration, backoff, policy, limit, expression)."""

from __future__ import annotations

import pytest

from kaic.executor.retryplan import (
    BACKOFF_EXCEEDS_MAX,
    MAX_DURATION_EXCEEDED,
    NO_MORE_RETRIES,
    Backoff,
    RetryPlan,
)

pytestmark = pytest.mark.unit


def test_defaults_are_on_failure_without_limit() -> None:
    plan = RetryPlan.from_spec({})
    assert (plan.policy, plan.limit, plan.backoff, plan.expression) == ("OnFailure", None, None, None)
    assert plan.decide(1, "Failed", 0.0, 1.0, 1.0).retry
    assert not plan.decide(1, "Error", 0.0, 1.0, 1.0).retry


@pytest.mark.parametrize(
    ("policy", "failed", "error"),
    [("Always", True, True), ("OnFailure", True, False), ("OnError", False, True), ("OnTransientError", False, False)],
)
def test_policy(policy: str, failed: bool, error: bool) -> None:
    plan = RetryPlan(policy=policy)
    assert plan.decide(1, "Failed", 0, 0, 0).retry is failed
    assert plan.decide(1, "Error", 0, 0, 0).retry is error


def test_limit_counts_retries_not_attempts() -> None:
    plan = RetryPlan(limit=2)
    assert plan.decide(1, "Failed", 0, 0, 0).retry
    assert plan.decide(2, "Failed", 0, 0, 0).retry
    stop = plan.decide(3, "Failed", 0, 0, 0)
    assert (stop.retry, stop.message) == (False, NO_MORE_RETRIES)


def test_policy_refusal_keeps_the_childs_message() -> None:
    stop = RetryPlan(policy="OnError", limit=0).decide(1, "Failed", 0, 0, 0)
    assert (stop.retry, stop.message) == (False, None)


def test_backoff_without_factor_is_constant_and_with_factor_grows_to_the_cap() -> None:
    assert [Backoff(10).wait_s(n) for n in (1, 2, 3)] == [10, 10, 10]
    assert [Backoff(1, factor=2, cap=5).wait_s(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_backoff_delay_is_measured_from_the_last_finish() -> None:
    plan = RetryPlan(limit=5, backoff=Backoff(10))
    assert plan.decide(1, "Failed", first_started=0, last_finished=4, now=6).delay_s == 8


def test_no_wait_without_a_limit_as_in_argo() -> None:
    assert RetryPlan(backoff=Backoff(10)).decide(1, "Failed", 0, 0, 0).delay_s == 0


def test_max_duration() -> None:
    plan = RetryPlan(limit=10, backoff=Backoff(10, max_duration=60))
    assert plan.decide(5, "Failed", 0, 40, 40).retry  # next at 50 <= 60
    assert plan.decide(6, "Failed", 0, 55, 55).message == BACKOFF_EXCEEDS_MAX  # next at 65 > 60
    assert plan.decide(7, "Failed", 0, 61, 61).message == MAX_DURATION_EXCEEDED


def test_expression_is_left_to_the_caller() -> None:
    plan = RetryPlan.from_spec({"limit": 3, "expression": "lastRetry.exitCode == '2'"})
    assert plan.decide(1, "Failed", 0, 0, 0).check_expression


def test_from_spec_substitutes_and_validates() -> None:
    spec = {"limit": "{{x}}", "retryPolicy": "Always", "backoff": {"duration": "1s", "factor": "2", "cap": "1m"}}
    plan = RetryPlan.from_spec(spec, lambda t: t.replace("{{x}}", "4"))
    assert plan == RetryPlan("Always", 4, Backoff(1.0, 2, 60.0, None), None)
    with pytest.raises(ValueError, match="retryPolicy"):
        RetryPlan.from_spec({"retryPolicy": "Sometimes"})
    with pytest.raises(ValueError, match="no base duration"):
        RetryPlan.from_spec({"backoff": {"factor": 2}})
