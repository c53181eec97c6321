"""Line-type lookups kept per number, so a paid lookup is paid once a month per number.

An adapter around a lookup, as a carrier is: it owns its table and commits its own writes. What it keeps is
a copy of an answer already paid for, not business state, so it is kept whether or not the send that asked
is then refused.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.kit.clock import Clock
from reachout.phones import repository
from reachout.phones.lookup import LineFacts, LineType, LineTypeLookup
from reachout.phones.models import LineTypeAnswer
from reachout.phones.numbers import PhoneNumber

# Numbers are ported and reassigned; an answer older than this is asked again.
ANSWER_LIFETIME: Final = timedelta(days=30)


class CachedLookup:
    """A lookup whose answers are kept in the database (shared by every process) and in memory.

    Only numbers libphonenumber cannot type reach it: the gates ask it for FIXED_LINE_OR_MOBILE numbers alone.
    """

    def __init__(
        self,
        lookup: LineTypeLookup,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        max_in_memory: int = 50_000,
    ) -> None:
        self._lookup = lookup
        self._sessions = sessions
        self._clock = clock
        self._max = max_in_memory
        self._memory: OrderedDict[str, tuple[LineFacts, datetime]] = OrderedDict()
        self.name = lookup.name

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        """The kept answer while it is fresh, else the lookup's (kept for next time)."""
        now = self._clock.now()
        kept = self._memory.get(number.e164)
        if kept is None or now - kept[1] >= ANSWER_LIFETIME:
            async with self._sessions() as session:
                row = await repository.kept_answer(session, number.e164, self.name)
            kept = None if row is None else (_facts(row), row.looked_up_at)
        if kept is None or now - kept[1] >= ANSWER_LIFETIME:
            facts = await self._lookup.look_up(number)
            async with self._sessions.begin() as session:
                await repository.keep_answer(
                    session,
                    LineTypeAnswer(
                        number=facts.number,
                        source=self.name,
                        valid=facts.valid,
                        line_type=facts.line_type.value,
                        carrier_name=facts.carrier_name,
                        looked_up_at=now,
                    ),
                )
            kept = (facts, now)
        self._memory[number.e164] = kept
        self._memory.move_to_end(number.e164)
        while len(self._memory) > self._max:
            self._memory.popitem(last=False)
        return kept[0]

    async def close(self) -> None:
        """Close the lookup it keeps answers for."""
        await self._lookup.close()


def _facts(row: LineTypeAnswer) -> LineFacts:
    return LineFacts(row.number, row.valid, LineType(row.line_type), row.carrier_name)
