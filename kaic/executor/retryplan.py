"""A retry plan: what ``retryStrategy`` decides after an attempt failed, as a pure function.

The order of the checks is Argo's (``processNodeRetries`` in workflow/controller/operator.go):
``backoff.maxDuration`` (measured from the first attempt's start), the backoff wait (``duration *
factor^(attempts-1)``, capped by ``cap``; only when a ``limit`` is set and not yet reached), the
``retryPolicy``, the ``limit``, and last the ``expression`` (which needs a scope, so the caller
evaluates it when the decision says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kaic.executor.loops import parse_duration

POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
NO_MORE_RETRIES = "No more retries left"
MAX_DURATION_EXCEEDED = "Max duration limit exceeded"
BACKOFF_EXCEEDS_MAX = "Backoff would exceed max duration limit"
EXPRESSION_FALSE = "retryStrategy.expression evaluated to false"


@dataclass(frozen=True)
class Backoff:
    duration: float  # seconds
    factor: int | None = None  # None or <= 0: every wait is ``duration``
    cap: float | None = None
    max_duration: float | None = None

    def wait_s(self, attempts: int) -> float:
        """The wait before the next attempt, after ``attempts`` attempts (>= 1)."""
        wait = self.duration
        if self.factor is not None and self.factor > 0:
            wait = self.duration * float(self.factor) ** (attempts - 1)
        return min(wait, self.cap) if self.cap is not None else wait


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_s: float = 0.0
    message: str | None = None  # the Retry node's message when it stops (None: the last child's)
    check_expression: bool = False  # retry only if ``expression`` evaluates true


@dataclass(frozen=True)
class RetryPlan:
    policy: str = "OnFailure"
    limit: int | None = None
    backoff: Backoff | None = None
    expression: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], resolve: Callable[[str], str] = str) -> RetryPlan:
        """A plan from a ``retryStrategy`` map; ``resolve`` substitutes ``{{...}}`` in its values.
        Raises ValueError on a bad value."""

        def text(value: Any) -> str:
            return resolve(value if isinstance(value, str) else str(value))

        policy = str(spec.get("retryPolicy") or "OnFailure")
        if policy not in POLICIES:
            raise ValueError(f"retryPolicy {policy!r} is not one of {', '.join(POLICIES)}")
        limit = int(text(spec["limit"])) if spec.get("limit") is not None else None
        raw = spec.get("backoff")
        backoff = None
        if isinstance(raw, Mapping) and raw:
            if raw.get("duration") in (None, ""):
                raise ValueError("no base duration specified for retryStrategy")
            factor = raw.get("factor")
            backoff = Backoff(
                duration=parse_duration(text(raw["duration"])),
                factor=int(text(factor)) if factor is not None else None,
                cap=parse_duration(text(raw["cap"])) if raw.get("cap") else None,
                max_duration=parse_duration(text(raw["maxDuration"])) if raw.get("maxDuration") else None,
            )
        expression = spec.get("expression")
        return cls(policy, limit, backoff, str(expression) if expression else None)

    def allows(self, phase: str) -> bool:
        """Whether the policy retries a child that ended in ``phase``. Nothing local is a transient
        (network) error, so OnTransientError never retries."""
        if self.policy == "Always":
            return phase in ("Failed", "Error")
        if self.policy == "OnFailure":
            return phase == "Failed"
        if self.policy == "OnError":
            return phase == "Error"
        return False

    def decide(self, attempts: int, phase: str, first_started: float, last_finished: float, now: float) -> Decision:
        """After ``attempts`` attempts, the last of which ended in ``phase`` (Failed or Error) at
        ``last_finished``; times are in seconds on one clock."""
        delay = 0.0
        if self.backoff is not None:
            b = self.backoff
            max_deadline = first_started + b.max_duration if b.max_duration is not None else None
            if max_deadline is not None and now > max_deadline:
                return Decision(False, message=MAX_DURATION_EXCEEDED)
            waiting_deadline = last_finished + b.wait_s(attempts)
            if max_deadline is not None and waiting_deadline > max_deadline:
                return Decision(False, message=BACKOFF_EXCEEDS_MAX)
            if self.limit is not None and attempts <= self.limit:
                delay = max(0.0, waiting_deadline - now)
        if not self.allows(phase):
            return Decision(False)
        if self.limit is not None and attempts > self.limit:
            return Decision(False, message=NO_MORE_RETRIES)
        return Decision(True, delay, check_expression=self.expression is not None)
