"""Time as a dependency: production reads the system clock, tests move a fake one by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


def iso_utc(moment: datetime) -> str:
    """A moment as reachout writes it for people and payloads: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc_or_none(moment: datetime | None) -> str | None:
    """`iso_utc`, keeping a missing moment missing."""
    return None if moment is None else iso_utc(moment)


class Clock(Protocol):
    """The one source of "now" for services and workers."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def sleep_until(self, instant: datetime) -> None:
        """Return once `instant` has come (at once if it has)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime) -> None:
        wait = (instant - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
            # The event loop keeps monotonic time, and may wake a hair before the wall clock gets there.
            remaining = (instant - datetime.now(UTC)).total_seconds()
            if remaining > 0:
                await asyncio.sleep(remaining)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, instant: datetime) -> None:
        """Jump to `instant`, as if the wait had passed (a test's waits take no real time)."""
        self._now = max(self._now, instant)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)

    def set(self, instant: datetime) -> None:
        """Jump to an instant."""
        self._now = instant
