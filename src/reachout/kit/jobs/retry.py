"""When to try again: a retry strategy kept apart from the mechanism that claims and leases the work."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryStrategy:
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
