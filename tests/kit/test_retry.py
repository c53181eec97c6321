"""The retry strategy: exponential, jittered within its share, capped, bounded, Retry-After honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.kit.jobs.retry import RetryStrategy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_without_jitter_the_delays_double_up_to_the_cap() -> None:
    strategy = RetryStrategy(2.0, max_attempts=10, cap_seconds=10.0, jitter=0.0)
    assert [strategy.delay(n).total_seconds() for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]


@given(
    attempts=st.integers(1, 60),
    base=st.floats(0.01, 100),
    jitter=st.floats(0, 1),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_a_jittered_delay_stays_within_its_share_of_the_capped_backoff(
    attempts: int, base: float, jitter: float, draw: float
) -> None:
    strategy = RetryStrategy(base, max_attempts=100, cap_seconds=base * 50, jitter=jitter)
    backoff = min(base * 2 ** (attempts - 1), base * 50)
    delay = strategy.delay(attempts, rng=lambda: draw).total_seconds()
    assert backoff * (1 - jitter) - 1e-6 <= delay <= backoff + 1e-6


def test_jitter_spreads_a_batch_that_failed_together() -> None:
    strategy = RetryStrategy(10.0, max_attempts=5, jitter=0.5)
    delays = {strategy.delay(1, rng=lambda d=draw: d).total_seconds() for draw in (0.0, 0.5, 0.99)}
    assert len(delays) == 3 and max(delays) == 10.0 and min(delays) > 5.0


@given(retry_after=st.floats(0, 10_000), draw=st.floats(0, 1, exclude_max=True))
def test_retry_after_is_never_cut_short_but_is_capped(retry_after: float, draw: float) -> None:
    strategy = RetryStrategy(1.0, max_attempts=5, cap_seconds=600.0)
    delay = strategy.delay(1, retry_after, rng=lambda: draw).total_seconds()
    assert delay >= min(retry_after, 600.0) - 1e-6  # timedelta keeps microseconds
    assert delay <= max(1.0, min(retry_after, 600.0)) + 1e-6


def test_the_last_attempt_allowed_has_no_next_one() -> None:
    strategy = RetryStrategy(2.0, max_attempts=3, jitter=0.0)
    assert strategy.next_attempt(1, NOW) == NOW + timedelta(seconds=2)
    assert strategy.next_attempt(2, NOW) == NOW + timedelta(seconds=4)
    assert strategy.next_attempt(3, NOW) is None


@pytest.mark.parametrize(
    "arguments",
    [
        {"base_seconds": -1.0, "max_attempts": 3},
        {"base_seconds": 10.0, "max_attempts": 3, "cap_seconds": 5.0},
        {"base_seconds": 1.0, "max_attempts": 0},
        {"base_seconds": 1.0, "max_attempts": 3, "jitter": 1.5},
    ],
)
def test_a_strategy_that_cannot_work_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryStrategy(**arguments)  # type: ignore[arg-type]
