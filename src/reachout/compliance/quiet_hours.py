"""Quiet hours (pure): when a first message may be sent, in the recipient's local time.

A number may lie in several time zones (libphonenumber lists them alphabetically; +1 500 has forty-two, from
Guam to Newfoundland). A message may go when the window is open in all of them; on a day when it never is,
when it is open in as many of them as it ever is that day (days as the first zone counts them). That is
never night for most of the places the recipient may be, where any one zone of the list would be an
alphabetical accident. Unknown zone names are ignored; with none left, the window is always open, as there
is nothing known to respect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reachout.phones.numbers import InvalidPhoneNumber, parse_e164

Span = tuple[datetime, datetime]

_DAY: Final = timedelta(days=1)
# UTC offsets run from -12:00 to +14:00, so a local date lies within 16 hours either side of the UTC one.
_MARGIN: Final = timedelta(hours=16)
# Only a window swallowed by a DST gap leaves a day without an opening, and never several days running.
_DAYS_AHEAD: Final = 7


@dataclass(frozen=True)
class SendingWindow:
    """The local wall-clock hours a first message may go: from `opens` up to, not including, `closes`."""

    opens: time = time(8, 0)
    closes: time = time(21, 0)

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("a sending window is in local wall-clock time, without a time zone")
        if not self.opens < self.closes:
            raise ValueError(f"a sending window must open before it closes, the same day: {self}")


DEFAULT_WINDOW: Final = SendingWindow()


def is_open(at: datetime, time_zones: Sequence[str], window: SendingWindow = DEFAULT_WINDOW) -> bool:
    """Whether a first message to a recipient in `time_zones` may go at the aware instant `at`."""
    instant, zones = _instant(at), _usable(time_zones)
    if not zones:
        return True
    return any(a <= instant < b for a, b in _allowed(zones, instant.astimezone(zones[0]).date(), window))


def next_opening(at: datetime, time_zones: Sequence[str], window: SendingWindow = DEFAULT_WINDOW) -> datetime:
    """`at` itself when the window is open now, else the first instant after it when it opens; in UTC."""
    instant, zones = _instant(at), _usable(time_zones)
    if not zones:
        return instant
    # A fall-back across midnight brings the previous local day back, and lets a day start before the
    # previous one ends: look at the day before, and at the day after the first one with an opening.
    day = instant.astimezone(zones[0]).date() - _DAY
    found: datetime | None = None
    for _ in range(_DAYS_AHEAD):
        hits = [max(a, instant) for a, b in _allowed(zones, day, window) if instant < b]
        if found is not None:
            return min([found, *hits])
        found = min(hits, default=None)
        day += _DAY
    raise RuntimeError(f"no opening of {window} within {_DAYS_AHEAD} days in {time_zones}")


def opening_for(at: datetime, recipient: str, window: SendingWindow = DEFAULT_WINDOW) -> datetime:
    """`next_opening` for a recipient's number (E.164, or `whatsapp:` and E.164), in its time zones."""
    return next_opening(at, _recipient_zones(recipient), window)


@lru_cache(maxsize=65_536)  # a worker asks for every due message, and recipients repeat
def _recipient_zones(recipient: str) -> tuple[str, ...]:
    try:
        return parse_e164(recipient.removeprefix("whatsapp:")).time_zones
    except InvalidPhoneNumber:
        return ()  # nothing known to respect, as for a number without a zone


def _instant(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError(f"an instant must be timezone-aware, not {at!r}")
    return at.astimezone(UTC)


def _usable(time_zones: Sequence[str]) -> tuple[ZoneInfo, ...]:
    if isinstance(time_zones, str):  # a str is a Sequence[str] too, of one-letter names
        raise TypeError(f"time_zones is a sequence of zone names, not the name {time_zones!r}")
    zones = (_zone(name) for name in dict.fromkeys(time_zones))  # a zone listed twice would count twice
    return tuple(zone for zone in zones if zone is not None)


# ZoneInfo keeps only the last eight zones loaded: the forty of +1 500 would be read from disk on every call.
@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # libphonenumber's "Etc/Unknown", or a zone this tzdata lacks


# A worker asks again for every due message; most share their zones and day.
@lru_cache(maxsize=4096)
def _allowed(zones: tuple[ZoneInfo, ...], day: date, window: SendingWindow) -> tuple[Span, ...]:
    """The spans of the first zone's local `day` when the window is open in as many `zones` as it can be."""
    midnight = datetime.combine(day, time(), UTC)
    start, end = midnight - _MARGIN, midnight + _DAY + _MARGIN
    days = [(a, b) for d, a, b in _local_spans(zones[0], start, end, timedelta(0), _DAY) if d == day]
    opens, closes = _since_midnight(window.opens), _since_midnight(window.closes)
    spans = [
        (max(a, c), min(b, d))
        for zone in zones
        for _, a, b in _local_spans(zone, start, end, opens, closes)
        for c, d in days
        if max(a, c) < min(b, d)
    ]
    # Sweep the spans' ends in time order, counting the zones open between each end and the next.
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    segments, count = [], 0
    for (instant, step), (following, _) in pairwise(edges):
        count += step
        if instant < following:
            segments.append((instant, following, count))
    best = max((n for *_, n in segments), default=0)
    return tuple((a, b) for a, b, n in segments if n == best > 0)


def _local_spans(
    zone: ZoneInfo, start: datetime, end: datetime, opens: timedelta, closes: timedelta
) -> Iterator[tuple[date, datetime, datetime]]:
    """The spans of [start, end) when `zone`'s wall clock reads from `opens` to `closes` past midnight."""
    for lo, hi, offset in _offsets(zone, start, end):
        day = (lo + offset).date()
        while (a := datetime.combine(day, time(), UTC) + opens - offset) < hi:
            b = datetime.combine(day, time(), UTC) + closes - offset
            if max(a, lo) < min(b, hi):
                yield day, max(a, lo), min(b, hi)
            day += _DAY


def _offsets(
    zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """[start, end) cut at `zone`'s offset changes; `start` is in whole seconds, as the changes are."""
    while start < end:
        stop = min(end, start + _DAY)
        offset = _offset(zone, start)
        if _offset(zone, stop) != offset:
            # A zone changes its offset at most once a day: bisect to the second it does.
            lo, hi = 0, int((stop - start).total_seconds())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset(zone, start + timedelta(seconds=mid)) == offset else (lo, mid)
            stop = start + timedelta(seconds=hi)
        yield start, stop, offset
        start = stop


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)
