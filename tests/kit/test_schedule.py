"""The fixed schedule of webhook deliveries: its delays, their jitter bounds, Retry-After within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.config import Settings
from reachout.events.deliverer import DEFAULT_SCHEDULE
from reachout.kit.jobs.retry import FixedSchedule, parse_retry_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STANDARD = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0]


def test_the_default_is_standard_webhooks_schedule_with_a_fifth_either_way() -> None:
    assert list(DEFAULT_SCHEDULE.delays_seconds) == STANDARD and DEFAULT_SCHEDULE.jitter == 0.2
    middle = [DEFAULT_SCHEDULE.delay(n, rng=lambda: 0.5).total_seconds() for n in range(1, 8)]
    assert middle == STANDARD[1:]


def test_the_setting_s_default_is_the_same_schedule() -> None:
    assert Settings().webhooks_retry_schedule_seconds == DEFAULT_SCHEDULE.delays_seconds


def test_after_the_eighth_attempt_there_is_none() -> None:
    assert DEFAULT_SCHEDULE.next_attempt(7, NOW, rng=lambda: 0.5) == NOW + timedelta(hours=10)
    assert DEFAULT_SCHEDULE.next_attempt(8, NOW) is None


@given(attempts=st.integers(1, 7), draw=st.floats(0, 1, exclude_max=True))
def test_every_delay_stays_within_twenty_percent_of_its_entry(attempts: int, draw: float) -> None:
    scheduled = STANDARD[attempts]
    delay = DEFAULT_SCHEDULE.delay(attempts, rng=lambda: draw).total_seconds()
    assert scheduled * 0.8 - 1e-6 <= delay <= scheduled * 1.2 + 1e-6


def test_jitter_reaches_both_ends() -> None:
    low = DEFAULT_SCHEDULE.delay(2, rng=lambda: 0.0).total_seconds()
    high = DEFAULT_SCHEDULE.delay(2, rng=lambda: 1.0).total_seconds()
    assert (low, high) == pytest.approx((240.0, 360.0))


@given(
    attempts=st.integers(1, 7),
    draw=st.floats(0, 1, exclude_max=True),
    retry_after=st.floats(0, 200_000, allow_nan=False),
)
def test_retry_after_is_honoured_within_the_delay_and_twice_it(
    attempts: int, draw: float, retry_after: float
) -> None:
    plain = DEFAULT_SCHEDULE.delay(attempts, rng=lambda: draw).total_seconds()
    asked = DEFAULT_SCHEDULE.delay(attempts, retry_after, rng=lambda: draw).total_seconds()
    assert plain - 1e-5 <= asked <= 2 * plain + 1e-5  # timedelta keeps microseconds
    if plain <= retry_after <= 2 * plain:
        assert asked == pytest.approx(retry_after, abs=1e-5)


def test_retry_after_slows_but_never_stalls_or_hurries() -> None:
    schedule = FixedSchedule((0.0, 10.0), jitter=0.0)
    assert schedule.delay(1, 15.0).total_seconds() == 15.0
    assert schedule.delay(1, 3600.0).total_seconds() == 20.0
    assert schedule.delay(1, 1.0).total_seconds() == 10.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("soon", None),
        ("²", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize("delays", [(), (1.0, -1.0)])
def test_a_schedule_needs_delays_none_negative(delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="schedule"):
        FixedSchedule(delays)
