"""Retry policy for API calls: bounded attempts, exponential backoff with full jitter, Retry-After honoured.

Pure: `RetryPolicy.delay` computes a wait; `call_with_retries` runs a call, asking `classify` whether
an outcome is retryable and how long the server asked to wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A create (POST) is retried only where the server says it did not act on it.
RETRYABLE_STATUS_UNSAFE = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries, the first included
    base_s: float = 0.5
    cap_s: float = 20.0
    max_retry_after_s: float = 60.0

    def delay(self, retry: int, retry_after_s: float | None,
              rand: Callable[[], float] = random.random) -> float:
        """Wait before retry number `retry` (0-based): full jitter over base*2^retry (capped); a server's
        Retry-After is a floor (itself capped at max_retry_after_s)."""
        backoff: float = rand() * min(self.cap_s, self.base_s * float(2.0**retry))
        if retry_after_s is not None:
            return max(min(retry_after_s, self.max_retry_after_s), backoff)
        return backoff


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(value: str | None, now: Callable[[], datetime] = _utcnow) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


class RetriesExhaustedError(Exception):
    def __init__(self, message: str, last: BaseException) -> None:
        super().__init__(message)
        self.last = last


class RetryableError(Exception):
    """Raised by a call to ask for another try; carries the server's Retry-After, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status


def call_with_retries(call: Callable[[], T], policy: RetryPolicy, what: str,
                      sleep: Callable[[float], None] = time.sleep,
                      rand: Callable[[], float] = random.random) -> T:
    """Run `call`; on `RetryableError`, wait and try again, up to policy.attempts tries in all."""
    for attempt in range(policy.attempts):
        try:
            return call()
        except RetryableError as exc:
            if attempt + 1 >= policy.attempts:
                raise RetriesExhaustedError(
                    f"{what}: gave up after {policy.attempts} attempts: {exc}", exc) from exc
            sleep(policy.delay(attempt, exc.retry_after_s, rand))
    raise AssertionError("unreachable")  # pragma: no cover
