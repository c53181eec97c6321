"""The kept line-type answers: a paid lookup is asked once per number per 30 days, whichever process asks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reachout.db.engine import Database
from reachout.kit.clock import FakeClock
from reachout.phones.lookup import LineFacts, LineType, LookupUnavailable
from reachout.phones.lookup_cache import ANSWER_LIFETIME, CachedLookup
from reachout.phones.numbers import PhoneNumber, parse_e164

NUMBER = parse_e164("+14155551234")


@dataclass
class CountingLookup:
    """A lookup double that answers from a table and counts what it was asked."""

    answers: dict[str, LineType] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    down: bool = False
    name: str = "counting"

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        self.asked.append(number.e164)
        if self.down:
            raise LookupUnavailable("down")
        return LineFacts(number.e164, True, self.answers.get(number.e164, LineType.MOBILE), "Carrier")

    async def close(self) -> None:
        pass


async def test_an_answer_is_kept_and_shared_by_every_process(database: Database, clock: FakeClock) -> None:
    remote = CountingLookup({NUMBER.e164: LineType.LANDLINE})
    first = CachedLookup(remote, database.write, clock)
    assert (await first.look_up(NUMBER)).line_type is LineType.LANDLINE
    assert (await first.look_up(NUMBER)).line_type is LineType.LANDLINE
    other_process = CachedLookup(remote, database.write, clock)
    facts = await other_process.look_up(NUMBER)
    assert (facts.line_type, facts.carrier_name, facts.valid) == (LineType.LANDLINE, "Carrier", True)
    assert remote.asked == [NUMBER.e164]


async def test_an_answer_older_than_30_days_is_asked_again(database: Database, clock: FakeClock) -> None:
    remote = CountingLookup()
    cached = CachedLookup(remote, database.write, clock)
    await cached.look_up(NUMBER)
    clock.advance(ANSWER_LIFETIME.total_seconds() - 1)
    await cached.look_up(NUMBER)
    assert len(remote.asked) == 1
    remote.answers[NUMBER.e164] = LineType.LANDLINE  # ported to a landline
    clock.advance(1)
    assert (await cached.look_up(NUMBER)).line_type is LineType.LANDLINE
    assert (await CachedLookup(remote, database.write, clock).look_up(NUMBER)).line_type is LineType.LANDLINE
    assert len(remote.asked) == 2


async def test_an_outage_is_not_kept(database: Database, clock: FakeClock) -> None:
    remote = CountingLookup(down=True)
    cached = CachedLookup(remote, database.write, clock)
    with pytest.raises(LookupUnavailable):
        await cached.look_up(NUMBER)
    remote.down = False
    assert (await cached.look_up(NUMBER)).line_type is LineType.MOBILE
    assert len(remote.asked) == 2
