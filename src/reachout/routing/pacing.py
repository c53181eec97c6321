"""Pacing senders (pure): when each due message may reach the carrier.

Every paced sender number, and every brand with a cap, is a line with a rate in message segments per
second. A line's state is one number, its theoretical arrival time (TAT): the instant it is free again. A
message costing n segments starts at the latest TAT of its lines (or now) and holds each line for n of
that line's emission intervals, so the lines never carry more than their rate, however many workers share
them: the TATs live in rows that a planning transaction locks (`routing.repository`).

Messages arrive here most urgent first (replies before first messages). One whose start is within the
horizon gets that start as its slot and moves the TATs. One that would start later is deferred until its
projected start is within the horizon, without reserving anything: when it comes due it is planned again,
behind any reply that arrived meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from reachout.kit.gcra import Rate, earliest_start


@dataclass(frozen=True)
class Line:
    """A paced resource: one sender number or one brand."""

    key: str
    rate: Rate


# The records of a batch's messages are NamedTuples (reachout.kit.records).
class Due(NamedTuple):
    """A message ready to go, as pacing sees it. Times are epoch seconds."""

    id: str
    cost: int
    lines: tuple[Line, ...]  # none: unpaced
    expires_at: float | None = None


@dataclass(frozen=True)
class Slot:
    """A message and the instant it may go (a slot), or the instant to look at it again (a deferral)."""

    id: str
    at: float


@dataclass(frozen=True)
class Plan:
    """What to do with one batch of due messages, and the TATs to store for the lines it reserved."""

    slots: tuple[Slot, ...]
    deferred: tuple[Slot, ...]
    expired: tuple[str, ...]
    arrivals: Mapping[str, float]


def lines_for(
    sender: str, sender_mps: float | None, brand: str | None = None, brand_mps: float | None = None
) -> tuple[Line, ...]:
    """The lines a message from `sender` occupies: the number's own and its brand's, where they are capped."""
    lines = []
    if sender_mps is not None:
        lines.append(Line(f"number:{sender}", Rate(count=sender_mps, per_seconds=1.0)))
    if brand is not None and brand_mps is not None:
        lines.append(Line(f"brand:{brand}", Rate(count=brand_mps, per_seconds=1.0)))
    return tuple(lines)


def plan(
    due: Sequence[Due], arrivals: Mapping[str, float], now: float, horizon: float, lead: float = 0.0
) -> Plan:
    """Slot, defer or expire each message of `due`, taken in order; `arrivals` are the lines' stored TATs.

    A paced message's slot is at least `lead` seconds away: a line's clock starts when the message reaches
    the carrier, which is after the plan is committed, and a slot taken before that would be sent late
    while the next one is sent on time, closer than the line allows.
    """
    cursor = dict(arrivals)  # where each line stands, deferred messages' projections included
    reserved: dict[str, float] = {}
    slots: list[Slot] = []
    deferred: list[Slot] = []
    expired: list[str] = []
    for message in due:
        if message.expires_at is not None and message.expires_at <= now:
            expired.append(message.id)
            continue
        start = now + lead if message.lines else now
        ends: dict[str, float] = {}
        for line in message.lines:
            line_start, _ = earliest_start(cursor.get(line.key), now, line.rate, message.cost)
            start = max(start, line_start)
        for line in message.lines:
            ends[line.key] = start + line.rate.emission_interval * message.cost
        cursor.update(ends)
        if start <= now + horizon:
            reserved.update(ends)
            slots.append(Slot(message.id, start))
        else:
            # Looked at again a horizon before its turn would come, so it is claimed in time to go on time
            # (or when it expires, if sooner).
            again = (
                start - horizon if message.expires_at is None else min(start - horizon, message.expires_at)
            )
            deferred.append(Slot(message.id, again))
    return Plan(tuple(slots), tuple(deferred), tuple(expired), reserved)
