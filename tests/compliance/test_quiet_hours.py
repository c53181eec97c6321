"""Quiet hours (pure): first messages go only inside the recipient's local window, never early, never lost."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reachout.compliance.quiet_hours import DEFAULT_WINDOW, SendingWindow, is_open, next_opening, opening_for

HONOLULU = ("Pacific/Honolulu",)
NEW_YORK = ("America/New_York",)
NY = ZoneInfo("America/New_York")
# What libphonenumber gives for +1 500 (non-geographic): every NANP zone, alphabetically.
PLUS_1_500 = (  # noqa: SIM905 - a one-per-line literal would run to 42 lines
    "America/Adak America/Anchorage America/Anguilla America/Antigua America/Barbados America/Boise "
    "America/Cayman America/Chicago America/Denver America/Dominica America/Edmonton America/Fort_Nelson "
    "America/Grand_Turk America/Grenada America/Halifax America/Jamaica America/Juneau America/Los_Angeles "
    "America/Lower_Princes America/Montserrat America/Nassau America/New_York America/North_Dakota/Center "
    "America/Phoenix America/Port_of_Spain America/Puerto_Rico America/Regina America/Santo_Domingo "
    "America/St_Johns America/St_Kitts America/St_Lucia America/St_Thomas America/St_Vincent "
    "America/Toronto America/Tortola America/Vancouver America/Winnipeg Atlantic/Bermuda Pacific/Guam "
    "Pacific/Honolulu Pacific/Pago_Pago Pacific/Saipan"
).split()


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(
    zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone))


# --- Examples -------------------------------------------------------------------------------------------


def test_the_same_instant_is_open_in_new_york_and_held_until_8_in_honolulu() -> None:
    at = utc(2026, 3, 10, 14, 30)  # 10:30 EDT, 04:30 HST
    assert is_open(at, NEW_YORK)
    assert next_opening(at, NEW_YORK) == at
    assert not is_open(at, HONOLULU)
    assert next_opening(at, HONOLULU) == utc(2026, 3, 10, 18)  # 08:00 HST


def test_the_answer_is_in_utc_whatever_zone_at_is_given_in() -> None:
    at = local("Asia/Tokyo", 2026, 3, 10, 23, 30)  # 14:30 UTC
    for zones in (NEW_YORK, HONOLULU, ()):
        opening = next_opening(at, zones)
        assert opening.tzinfo is UTC
    assert next_opening(at, NEW_YORK) == utc(2026, 3, 10, 14, 30)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        (time(7, 59, 59, 999_999), False),
        (time(8, 0), True),  # the window opens at 08:00 exactly
        (time(8, 0, 0, 1), True),
        (time(12, 0), True),
        (time(20, 59, 59), True),
        (time(20, 59, 59, 999_999), True),
        (time(21, 0), False),  # and is closed at 21:00 exactly
        (time(23, 59), False),
        (time(0, 0), False),
    ],
)
def test_the_window_opens_at_8_and_closes_at_21_exclusive(wall: time, expected: bool) -> None:
    at = datetime.combine(date(2026, 6, 15), wall, NY)
    assert is_open(at, NEW_YORK) is expected
    assert (next_opening(at, NEW_YORK) == at) is expected


@pytest.mark.parametrize(
    ("at", "opening"),
    [
        (local("America/New_York", 2026, 6, 15, 21), utc(2026, 6, 16, 12)),
        (local("America/New_York", 2026, 6, 15, 23, 30), utc(2026, 6, 16, 12)),
        (local("America/New_York", 2026, 6, 16, 0, 0), utc(2026, 6, 16, 12)),
        (local("America/New_York", 2026, 6, 16, 7, 59, 59), utc(2026, 6, 16, 12)),
        (local("Pacific/Honolulu", 2026, 12, 31, 22), utc(2027, 1, 1, 18)),  # across a year end
    ],
)
def test_late_evening_and_night_are_held_until_8_the_next_morning(at: datetime, opening: datetime) -> None:
    zones = (str(at.tzinfo),)
    assert not is_open(at, zones)
    assert next_opening(at, zones) == opening


@pytest.mark.parametrize(
    ("at", "opening"),
    [
        (utc(2026, 3, 7, 5), utc(2026, 3, 7, 13)),  # Saturday, EST: 08:00 is 13:00 UTC
        (utc(2026, 3, 8, 5), utc(2026, 3, 8, 12)),  # spring forward at 02:00: 08:00 EDT is 12:00 UTC
        (utc(2026, 3, 9, 1, 30), utc(2026, 3, 9, 12)),  # 21:30 EDT on the Sunday
        (utc(2026, 10, 31, 5), utc(2026, 10, 31, 12)),  # Saturday, EDT
        (utc(2026, 11, 1, 5), utc(2026, 11, 1, 13)),  # 01:00 EDT, falls back at 02:00: 08:00 EST is 13:00
        (utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13)),  # 01:30 EST, the second time round
    ],
)
def test_new_york_openings_follow_daylight_saving(at: datetime, opening: datetime) -> None:
    assert next_opening(at, NEW_YORK) == opening
    assert not is_open(opening - timedelta(microseconds=1), NEW_YORK)


def test_new_york_closes_at_21_local_on_both_transition_days() -> None:
    assert is_open(utc(2026, 3, 9, 0, 59, 59), NEW_YORK)  # 20:59:59 EDT
    assert not is_open(utc(2026, 3, 9, 1), NEW_YORK)
    assert is_open(utc(2026, 11, 2, 1, 59, 59), NEW_YORK)  # 20:59:59 EST
    assert not is_open(utc(2026, 11, 2, 2), NEW_YORK)


@pytest.mark.parametrize("month", [1, 3, 7, 11])
def test_honolulu_has_no_daylight_saving_and_opens_at_18_utc_all_year(month: int) -> None:
    assert next_opening(utc(2026, month, 8, 9), HONOLULU) == utc(2026, month, 8, 18)


def test_an_opening_time_in_a_dst_gap_opens_at_the_end_of_the_gap() -> None:
    window = SendingWindow(time(2, 30), time(5))  # 02:30 does not exist in New York on 2026-03-08
    assert next_opening(utc(2026, 3, 8, 5), NEW_YORK, window) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert is_open(utc(2026, 3, 8, 7), NEW_YORK, window)
    assert not is_open(utc(2026, 3, 8, 6, 59, 59, 999_999), NEW_YORK, window)  # 01:59:59 EST


def test_an_opening_time_that_happens_twice_opens_the_first_time_and_again_the_second() -> None:
    window = SendingWindow(time(1, 30), time(5))  # 01:30 happens twice in New York on 2026-11-01
    assert next_opening(utc(2026, 11, 1, 4), NEW_YORK, window) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    # From 02:00 EDT the clock reads 01:00 EST: before the window again, until it reads 01:30 once more.
    assert not is_open(utc(2026, 11, 1, 6, 10), NEW_YORK, window)
    assert next_opening(utc(2026, 11, 1, 6, 10), NEW_YORK, window) == utc(2026, 11, 1, 6, 30)


def test_a_fall_back_at_midnight_reopens_a_late_window_the_same_evening() -> None:
    santiago = ("America/Santiago",)  # 2026-04-04 24:00 -03 (04-05 03:00 UTC) falls back to 23:00 -04
    window = SendingWindow(time(23, 15), time(23, 45))
    assert next_opening(utc(2026, 4, 5, 2), santiago, window) == utc(2026, 4, 5, 2, 15)
    assert not is_open(utc(2026, 4, 5, 2, 50), santiago, window)
    assert next_opening(utc(2026, 4, 5, 2, 50), santiago, window) == utc(2026, 4, 5, 3, 15)
    assert is_open(utc(2026, 4, 5, 3, 44, 59), santiago, window)
    assert not is_open(utc(2026, 4, 5, 3, 45), santiago, window)


def test_a_day_that_happens_twice_is_searched_in_time_order() -> None:
    # Alaska left the Russian calendar on 1867-10-19 at 00:31:13 UTC: Juneau's clock went from the 19th,
    # 15:33:31 (+15:02:19) back to the 18th, 15:33:32 (-08:57:41). The 18th's evening followed the 19th.
    juneau = ("America/Juneau",)
    at_16 = SendingWindow(time(16), time(17))
    # From the 19th at 15:22, 16:00 comes next on the 18th, again.
    assert next_opening(utc(1867, 10, 19, 0, 20), juneau, at_16) == utc(1867, 10, 19, 0, 57, 41)
    # From the first 18th at 18:00, the 19th's 10:00 comes before the second 18th's 15:33:32.
    at_10 = SendingWindow(time(10), time(17))
    assert next_opening(utc(1867, 10, 18, 2, 57, 41), juneau, at_10) == utc(1867, 10, 18, 18, 57, 41)


@pytest.mark.parametrize(
    "zones", [("America/Chicago", "America/New_York"), ("America/New_York", "America/Chicago")]
)
def test_several_zones_are_open_only_where_all_of_them_are(zones: tuple[str, str]) -> None:
    # June: New York is UTC-4, Chicago UTC-5; both are open from 13:00 to 01:00 UTC.
    assert not is_open(utc(2026, 6, 15, 12, 30), zones)  # 08:30 in New York, 07:30 in Chicago
    assert next_opening(utc(2026, 6, 15, 12, 30), zones) == utc(2026, 6, 15, 13)
    assert is_open(utc(2026, 6, 15, 13), zones)
    assert is_open(utc(2026, 6, 16, 0, 59, 59), zones)  # 20:59:59 in New York
    assert not is_open(utc(2026, 6, 16, 1), zones)  # 21:00 in New York, 20:00 in Chicago
    assert next_opening(utc(2026, 6, 16, 1), zones) == utc(2026, 6, 16, 13)


def test_honolulu_and_new_york_share_the_afternoon_in_new_york() -> None:
    zones = ("America/New_York", "Pacific/Honolulu")
    assert next_opening(utc(2026, 1, 15, 14), zones) == utc(2026, 1, 15, 18)  # 08:00 HST, 13:00 EST
    assert is_open(utc(2026, 1, 16, 1, 59), zones)
    assert not is_open(utc(2026, 1, 16, 2), zones)  # 21:00 EST


def test_the_forty_zones_of_plus_1_500_share_an_evening_in_new_york() -> None:
    # Guam opens at 08:00 ChST (22:00 UTC) while Newfoundland is still open until 21:00.
    assert next_opening(utc(2026, 1, 15, 12), PLUS_1_500) == utc(2026, 1, 15, 22)
    assert is_open(utc(2026, 1, 16, 0, 29), PLUS_1_500)
    assert not is_open(utc(2026, 1, 16, 0, 30), PLUS_1_500)  # 21:00 NST


def test_zones_without_a_shared_moment_use_the_moments_open_in_the_most_of_them() -> None:
    # January, in UTC: London is open 08:00-21:00, Kolkata 02:30-15:30, Los Angeles 16:00-05:00.
    zones = ("America/Los_Angeles", "Asia/Kolkata", "Europe/London")
    assert is_open(utc(2026, 1, 15, 10), zones)  # London and Kolkata
    assert not is_open(utc(2026, 1, 15, 15, 45), zones)  # London alone
    assert next_opening(utc(2026, 1, 15, 15, 45), zones) == utc(2026, 1, 15, 16)  # London and Los Angeles
    assert not is_open(utc(2026, 1, 15, 22), zones)  # Los Angeles alone
    assert next_opening(utc(2026, 1, 15, 22), zones) == utc(2026, 1, 16, 2, 30)  # Los Angeles and Kolkata


def test_a_narrow_window_for_plus_1_500_leaves_out_only_three_far_pacific_zones() -> None:
    window = SendingWindow(time(10), time(17))
    opening = next_opening(utc(2026, 1, 15, 12), PLUS_1_500, window)
    assert opening == utc(2026, 1, 15, 20)  # 10:00 in Honolulu, 16:30 in Newfoundland
    assert is_open(utc(2026, 1, 15, 20, 29, 59), PLUS_1_500, window)
    assert not is_open(utc(2026, 1, 15, 20, 30), PLUS_1_500, window)  # 17:00 in Newfoundland
    closed = [
        zone for zone in PLUS_1_500 if not time(10) <= opening.astimezone(ZoneInfo(zone)).time() < time(17)
    ]
    assert closed == ["Pacific/Guam", "Pacific/Pago_Pago", "Pacific/Saipan"]


def test_without_a_known_zone_the_window_is_always_open() -> None:
    at = utc(2026, 3, 10, 3)
    for zones in [(), ("Etc/Unknown",), ("Mars/Olympus_Mons", "", "../etc/passwd")]:
        assert is_open(at, zones)
        assert next_opening(at, zones) == at


def test_unknown_zones_are_ignored_beside_known_ones() -> None:
    at = utc(2026, 3, 10, 14, 30)
    assert next_opening(at, ("Etc/Unknown", "Pacific/Honolulu")) == utc(2026, 3, 10, 18)
    assert not is_open(at, ("Mars/Olympus_Mons", "Pacific/Honolulu"))


def test_a_zone_listed_twice_counts_once() -> None:
    zones = ("Asia/Kolkata", "Asia/Kolkata", "Europe/London", "America/Los_Angeles")
    assert is_open(utc(2026, 1, 15, 16, 30), zones)  # London and LA; Kolkata twice would outnumber them


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(datetime(2026, 3, 10, 14, 30), NEW_YORK)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(datetime(2026, 3, 10, 14, 30), ())


def test_a_single_zone_name_is_refused_as_a_sequence_of_letters() -> None:
    with pytest.raises(TypeError):
        is_open(utc(2026, 3, 10), "America/New_York")


@pytest.mark.parametrize(
    ("opens", "closes"),
    [
        (time(21), time(8)),
        (time(8), time(8)),
        (time(22), time(6)),
        (time(8, tzinfo=UTC), time(21, tzinfo=UTC)),
    ],
)
def test_a_window_that_does_not_open_before_it_closes_the_same_day_is_refused(
    opens: time, closes: time
) -> None:
    with pytest.raises(ValueError):
        SendingWindow(opens, closes)


def test_the_default_window_is_8_to_21_and_frozen() -> None:
    assert SendingWindow(time(8), time(21)) == DEFAULT_WINDOW
    with pytest.raises(FrozenInstanceError):
        DEFAULT_WINDOW.opens = time(7)  # type: ignore[misc]


# --- Properties -----------------------------------------------------------------------------------------

REALISTIC_ZONES = [
    "Pacific/Honolulu",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 / -02:30
    "Pacific/Guam",
    "America/Santiago",  # falls back across midnight
    "Asia/Beirut",  # springs forward over midnight
    "Etc/Unknown",  # libphonenumber's answer when it knows nothing; not a zone
]
KNOWN = available_timezones()
INSTANT_ZONES = [UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Pacific/Chatham")]

zone_sets = st.lists(st.sampled_from(REALISTIC_ZONES), max_size=4).map(tuple)
instants = st.datetimes(
    datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.sampled_from(INSTANT_ZONES)
)
# Whole minutes, like every offset and transition of these zones, so that the oracle can count in minutes.
windows = st.one_of(
    st.just(DEFAULT_WINDOW),
    st.integers(0, 24 * 60 - 2).flatmap(
        lambda opens: st.integers(opens + 1, 24 * 60 - 1).map(
            lambda closes: SendingWindow(time(*divmod(opens, 60)), time(*divmod(closes, 60)))
        )
    ),
)


def open_in(instant: datetime, zone: ZoneInfo, window: SendingWindow) -> bool:
    return window.opens <= instant.astimezone(zone).time() < window.closes


def zones_of(names: tuple[str, ...]) -> list[ZoneInfo]:
    return [ZoneInfo(name) for name in dict.fromkeys(names) if name in KNOWN]


@lru_cache(maxsize=4096)
def most_open_in_a_day(names: tuple[str, ...], day: date, window: SendingWindow) -> int:
    """The most zones open at once during the first zone's local `day`, counting minute by minute."""
    zones = zones_of(names)
    midnight = datetime.combine(day, time(), UTC)
    minutes = (midnight + timedelta(minutes=m) for m in range(-16 * 60, 40 * 60))
    in_day = (m for m in minutes if m.astimezone(zones[0]).date() == day)
    return max(sum(open_in(m, zone, window) for zone in zones) for m in in_day)


def oracle(at: datetime, names: tuple[str, ...], window: SendingWindow) -> bool:
    """The rule, spelled out: open in every zone, or else in as many as ever are at once that day."""
    zones = zones_of(names)
    if not zones:
        return True
    count = sum(open_in(at, zone, window) for zone in zones)
    if count == len(zones):
        return True
    return count > 0 and count == most_open_in_a_day(names, at.astimezone(zones[0]).date(), window)


@st.composite
def edge_instants(draw: st.DrawFn, names: tuple[str, ...], window: SendingWindow) -> datetime:
    """An instant at, or a hair either side of, a zone's opening or closing time."""
    zone = ZoneInfo(draw(st.sampled_from([n for n in names if n in KNOWN])))
    day = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    wall = datetime.combine(day, draw(st.sampled_from([window.opens, window.closes])), zone)
    nudge = draw(st.sampled_from([-1_000_000, -1, 0, 1, 1_000_000]))
    return wall + timedelta(microseconds=nudge)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), names=zone_sets, window=windows)
def test_is_open_agrees_with_the_oracle(
    data: st.DataObject, names: tuple[str, ...], window: SendingWindow
) -> None:
    known = [name for name in names if name in KNOWN]
    at = data.draw(st.one_of(instants, edge_instants(names, window)) if known else instants)
    assert is_open(at, names, window) is oracle(at, names, window)


@settings(max_examples=300, deadline=None)
@given(at=instants, names=zone_sets, window=windows, nudge=st.integers(0, 2**62))
@example(at=utc(2026, 3, 10, 14, 30), names=HONOLULU, window=DEFAULT_WINDOW, nudge=2**40)
def test_next_opening_is_the_first_open_instant_not_before_at(
    at: datetime, names: tuple[str, ...], window: SendingWindow, nudge: int
) -> None:
    opening = next_opening(at, names, window)
    # In UTC, as `at` may be a wall time in a DST gap or fold: across zones, == is then False (PEP 495), and
    # adding to an aware datetime moves its wall clock, not the instant.
    start = at.astimezone(UTC)
    assert opening.tzinfo is UTC
    assert start <= opening < start + timedelta(days=3)
    assert is_open(opening, names, window) and oracle(opening, names, window)
    assert is_open(at, names, window) is (opening == start)
    if opening != start:
        # Nothing in [at, opening) is open: not the instant just before it, nor one drawn in between.
        before = opening - timedelta(microseconds=1)
        assert not is_open(before, names, window) and not oracle(before, names, window)
        if opening - timedelta(seconds=1) >= start:
            assert not is_open(opening - timedelta(seconds=1), names, window)
        between = start + timedelta(microseconds=nudge % ((opening - start) // timedelta(microseconds=1)))
        assert not is_open(between, names, window) and not oracle(between, names, window)


@settings(max_examples=200, deadline=None)
@given(at=instants, names=st.lists(st.sampled_from(REALISTIC_ZONES), max_size=2).map(tuple))
def test_any_two_zones_share_the_default_window_within_a_day(at: datetime, names: tuple[str, ...]) -> None:
    # Two wall clocks are at most 12 hours apart and the window lasts 13: they always overlap.
    opening = next_opening(at, names)
    assert opening - at <= timedelta(hours=25)  # a day, and an hour for daylight saving
    assert all(open_in(opening, zone, DEFAULT_WINDOW) for zone in zones_of(names))


def test_opening_for_a_number_uses_its_time_zones() -> None:
    """The recipient's number, bare or on WhatsApp, names its zones; an unparsable one has none: open."""
    at = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # 04:30 in Honolulu, 10:30 in New York
    honolulu_opens = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    assert opening_for(at, "+18085551234") == honolulu_opens
    assert opening_for(at, "whatsapp:+18085551234") == honolulu_opens
    assert opening_for(at, "+12125551234") == at
    assert opening_for(at, "not a number") == at
