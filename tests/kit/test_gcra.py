import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.kit.gcra import Decision, Rate, decide, earliest_start

# Float error the properties tolerate, in units of cost: far below one request.
TOLERANCE = 1e-6


def run(
    arrivals: list[tuple[float, float]], rate: Rate, burst: float | None = None
) -> list[tuple[float, float, Decision]]:
    """Feed (time, cost) arrivals through decide, storing new_tat each time, as a caller would."""
    tat: float | None = None
    out = []
    for now, cost in arrivals:
        decision = decide(tat, now, rate, cost, burst)
        tat = decision.new_tat
        out.append((now, cost, decision))
    return out


def test_rate_emission_interval() -> None:
    assert Rate(60, 60).emission_interval == 1.0
    assert Rate(1, 1).emission_interval == 1.0
    assert Rate(10, 1).emission_interval == pytest.approx(0.1)
    assert Rate(0.5, 1).emission_interval == 2.0


@pytest.mark.parametrize(
    ("count", "per_seconds"),
    [(0, 60), (-1, 60), (60, 0), (60, -1), (math.inf, 60), (60, math.inf), (math.nan, 60), (60, math.nan)],
)
def test_rate_must_be_positive_and_finite(count: float, per_seconds: float) -> None:
    with pytest.raises(ValueError, match="must be a positive finite number"):
        Rate(count, per_seconds)


def test_sixty_a_minute_allows_sixty_at_once_then_one_a_second() -> None:
    rate = Rate(60, 60)
    tat: float | None = None
    for _ in range(60):
        decision = decide(tat, 0.0, rate)
        assert decision.allowed
        assert decision.retry_after == 0.0
        tat = decision.new_tat
    assert tat == 60.0

    refused = decide(tat, 0.0, rate)
    assert (refused.allowed, refused.new_tat) == (False, 60.0)
    assert refused.retry_after == pytest.approx(1.0)

    assert not decide(tat, 0.999, rate).allowed
    later = decide(tat, 1.0, rate)
    assert later.allowed
    assert later.new_tat == 61.0
    assert not decide(later.new_tat, 1.0, rate).allowed


def test_default_burst_lets_twice_count_through_a_window_at_its_edges() -> None:
    # The documented leaky-bucket semantics: a full burst at t=0, and a full bucket again by t=60.
    allowed = [d for _, _, d in run([(0.0, 1.0)] * 60 + [(60.0, 1.0)] * 61, Rate(60, 60)) if d.allowed]
    assert len(allowed) == 120


def test_explicit_burst() -> None:
    rate = Rate(10, 1)
    results = run([(0.0, 1.0)] * 5, rate, burst=3)
    assert [d.allowed for _, _, d in results] == [True, True, True, False, False]
    assert results[3][2].retry_after == pytest.approx(0.1)


def test_burst_of_one_is_strict_pacing() -> None:
    results = run([(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (2.5, 1.0)], Rate(1, 1), burst=1)
    assert [d.allowed for _, _, d in results] == [True, False, True, False, True]


def test_cost_counts_as_that_many_requests() -> None:
    rate = Rate(10, 10)
    first = decide(None, 0.0, rate, cost=7)
    assert first == Decision(True, 7.0, 0.0)
    refused = decide(first.new_tat, 0.0, rate, cost=4)
    assert (refused.allowed, refused.new_tat) == (False, 7.0)
    assert refused.retry_after == pytest.approx(1.0)
    assert decide(first.new_tat, 0.0, rate, cost=3).allowed


def test_zero_cost_is_always_allowed_and_changes_nothing() -> None:
    full = decide(None, 0.0, Rate(1, 1), cost=1)
    assert decide(full.new_tat, 0.0, Rate(1, 1), cost=0) == Decision(True, 1.0, 0.0)


def test_an_old_tat_is_as_good_as_none() -> None:
    assert decide(-100.0, 5.0, Rate(1, 1)) == decide(None, 5.0, Rate(1, 1)) == Decision(True, 6.0, 0.0)


def test_a_tat_of_zero_is_not_mistaken_for_none() -> None:
    assert decide(0.0, -10.0, Rate(1, 1), burst=1).allowed is False


@pytest.mark.parametrize(
    ("tat", "now", "cost", "burst", "message"),
    [
        (None, 0.0, -1.0, None, "cost must be"),
        (None, 0.0, math.nan, None, "cost must be"),
        (None, 0.0, math.inf, None, "cost must be"),
        (None, 0.0, 1.0, 0.0, "burst must be"),
        (None, 0.0, 1.0, -1.0, "burst must be"),
        (None, 0.0, 1.0, math.inf, "burst must be"),
        (None, 0.0, 5.0, 4.0, "can never fit a burst"),
        (None, 0.0, 2.0, None, "can never fit a burst"),  # the default burst is count, here 1
        (None, math.nan, 1.0, None, "now must be"),
        (math.inf, 0.0, 1.0, None, "tat must be"),
    ],
)
def test_bad_arguments(tat: float | None, now: float, cost: float, burst: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(tat, now, Rate(1, 1), cost, burst)


@pytest.mark.parametrize(
    ("now", "count", "per_seconds"),
    [(1_763_900_000.123, 13, 10), (123_456.789, 100, 60), (1_000_000.1, 3, 1)],
)
def test_a_full_burst_fits_at_large_times(now: float, count: int, per_seconds: float) -> None:
    # Each of these intervals is inexact in binary, so every addition onto a large timestamp rounds;
    # without slack in the comparison, each case here refuses its last request.
    results = run([(now, 1.0)] * (count + 1), Rate(count, per_seconds))
    assert [d.allowed for _, _, d in results] == [True] * count + [False]


def test_earliest_start_paces_a_sender() -> None:
    rate = Rate(1, 1)  # one segment a second
    assert earliest_start(None, 10.0, rate, cost=3) == (10.0, 13.0)
    assert earliest_start(13.0, 10.5, rate, cost=2) == (13.0, 15.0)
    assert earliest_start(15.0, 20.0, rate) == (20.0, 21.0)
    assert earliest_start(0.0, -5.0, rate) == (0.0, 1.0)
    with pytest.raises(ValueError, match="cost must be"):
        earliest_start(None, 0.0, rate, cost=-1)
    with pytest.raises(ValueError, match="now must be"):
        earliest_start(None, math.inf, rate)


rates = st.builds(
    Rate,
    st.integers(min_value=1, max_value=100).map(float),
    st.floats(min_value=0.1, max_value=100, allow_nan=False, allow_infinity=False),
)
costs = st.sampled_from([1.0, 1.0, 1.0, 2.0, 3.0, 0.5])
gaps = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=5, allow_nan=False, allow_infinity=False))


@st.composite
def traffic(draw: st.DrawFn) -> tuple[Rate, float | None, list[tuple[float, float]]]:
    rate = draw(rates)
    burst = draw(st.one_of(st.none(), st.floats(min_value=3.0, max_value=2 * rate.count + 3)))
    if burst is None and rate.count < 3:
        burst = 3.0  # the largest cost drawn must fit in a burst
    steps = draw(st.lists(st.tuples(gaps, costs), max_size=80))
    start = draw(st.floats(min_value=0, max_value=1000))
    times = itertools.accumulate((gap for gap, _ in steps), initial=start)
    next(times)
    return rate, burst, [(t, cost) for t, (_, cost) in zip(times, steps, strict=True)]


@given(traffic())
def test_admitted_cost_over_any_interval_is_bounded(
    case: tuple[Rate, float | None, list[tuple[float, float]]],
) -> None:
    rate, burst, arrivals = case
    admitted = [(t, c) for t, c, d in run(arrivals, rate, burst) if d.allowed]
    limit = rate.count if burst is None else burst
    interval = rate.emission_interval
    # Over [a, b] the bucket holds at most `burst` and refills (b - a) / interval.
    for i, (first, _) in enumerate(admitted):
        total = 0.0
        for last, cost in admitted[i:]:
            total += cost
            assert total <= limit + (last - first) / interval + TOLERANCE
            if last - first <= rate.per_seconds:
                assert total <= limit + rate.count + TOLERANCE


@given(traffic())
def test_refusals_change_nothing_and_say_when_to_retry(
    case: tuple[Rate, float | None, list[tuple[float, float]]],
) -> None:
    rate, burst, arrivals = case
    tat: float | None = None
    for now, cost in arrivals:
        decision = decide(tat, now, rate, cost, burst)
        if decision.allowed:
            assert decision.retry_after == 0.0
            assert decision.new_tat == (now if tat is None else max(tat, now)) + rate.emission_interval * cost
        else:
            assert decision.new_tat == tat
            assert decision.retry_after > 0
            assert decide(tat, now + decision.retry_after, rate, cost, burst).allowed
        tat = decision.new_tat


@given(rates, st.lists(st.tuples(st.floats(min_value=0, max_value=3), costs), max_size=50))
def test_traffic_within_the_rate_is_never_refused(rate: Rate, steps: list[tuple[float, float]]) -> None:
    now, tat = 0.0, None
    for extra, cost in steps:
        decision = decide(tat, now, rate, cost, burst=3.0)
        assert decision.allowed
        tat = decision.new_tat
        now = now + rate.emission_interval * cost + extra


@given(
    st.floats(min_value=0, max_value=2e9),
    st.integers(min_value=1, max_value=200),
    st.floats(min_value=1, max_value=3600),
)
def test_exactly_count_fit_in_one_instant(now: float, count: int, per_seconds: float) -> None:
    results = run([(now, 1.0)] * (count + 1), Rate(count, per_seconds))
    assert [d.allowed for _, _, d in results] == [True] * count + [False]


@given(
    rates,
    st.lists(
        st.tuples(st.floats(min_value=-100, max_value=1000), st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5])),
        max_size=50,
    ),
)
def test_earliest_start_never_overlaps_jobs(rate: Rate, jobs: list[tuple[float, float]]) -> None:
    tat: float | None = None
    previous: tuple[float, float] | None = None
    for now, cost in jobs:
        start, new_tat = earliest_start(tat, now, rate, cost)
        assert start >= now
        assert new_tat == start + rate.emission_interval * cost
        if previous is not None:
            prev_start, prev_cost = previous
            assert start >= prev_start + rate.emission_interval * prev_cost
        previous, tat = (start, cost), new_tat
