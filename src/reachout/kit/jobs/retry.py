"""When to try again: a retry strategy kept apart from the mechanism that claims and leases the work."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


class _Schedule:
    """What every strategy answers from its `max_attempts` and `delay`: when the next attempt is."""

    max_attempts: int

    def delay(
        self, attempts: int, retry_after: float | None = None, *, rng: Callable[[], float] = random.random
    ) -> timedelta:
        raise NotImplementedError

    def next_attempt(
        self,
        attempts: int,
        now: datetime,
        retry_after: float | None = None,
        *,
        rng: Callable[[], float] = random.random,
    ) -> datetime | None:
        """When to try again after the `attempts`-th attempt failed, or None: it was the last one allowed."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts, retry_after, rng=rng)


@dataclass(frozen=True)
class RetryStrategy(_Schedule):
    """Exponential backoff with jitter and a cap, for at most `max_attempts` attempts in all.

    The n-th retry waits `base * 2**(n-1)` seconds, capped at `cap_seconds`, less a random share of up to
    `jitter` of it (so retries of a batch that failed together spread out instead of failing together again).
    A `Retry-After` from the other side is honoured: never sooner than it asks, up to the cap.
    """

    base_seconds: float
    max_attempts: int
    cap_seconds: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("a retry strategy needs 0 <= base_seconds <= cap_seconds")
        if self.max_attempts < 1:
            raise ValueError("a retry strategy needs max_attempts >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a share of the delay, between 0 and 1")

    def delay(
        self, attempts: int, retry_after: float | None = None, *, rng: Callable[[], float] = random.random
    ) -> timedelta:
        """How long to wait after the `attempts`-th attempt failed."""
        backoff = min(self.base_seconds * 2 ** max(attempts - 1, 0), self.cap_seconds)
        seconds = backoff * (1.0 - self.jitter * rng())
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, self.cap_seconds))
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class FixedSchedule(_Schedule):
    """Attempts at set delays, each jittered by up to ± `jitter` of itself: `delays_seconds[n]` after the
    n-th attempt failed (the first entry is the first attempt's own delay), for as many attempts as there are
    entries. A `Retry-After` from the other side is honoured within [the delay, twice the delay]: it may slow
    the schedule down, never stall it or speed it up."""

    delays_seconds: tuple[float, ...]
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays_seconds or any(delay < 0 for delay in self.delays_seconds):
            raise ValueError("a schedule needs at least one delay, none negative")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a share of the delay, at least 0 and under 1")

    @property
    def max_attempts(self) -> int:  # type: ignore[override]  # one attempt per delay, so not a field
        return len(self.delays_seconds)

    def delay(
        self, attempts: int, retry_after: float | None = None, *, rng: Callable[[], float] = random.random
    ) -> timedelta:
        """How long to wait after the `attempts`-th attempt failed (one that is not the last)."""
        scheduled = self.delays_seconds[attempts] * (1.0 + self.jitter * (2.0 * rng() - 1.0))
        if retry_after is not None:
            scheduled = min(max(retry_after, scheduled), 2.0 * scheduled)
        return timedelta(seconds=scheduled)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """An HTTP `Retry-After` (delay-seconds or an HTTP-date) as seconds from `now`; None if absent or
    unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to str.isdigit, not to float
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
