"""Work the worker has yet to do, read from the database; and `settle`, which works until none is left.

Pending is read from the tables themselves, not from what a pass reports (a pass that finds nothing due says
nothing of a report due in three seconds): outbound messages still queued, sandbox reports still to make,
conversation jobs (turns, inactivity timers) still to fire, webhook deliveries still to make.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, text

from reachout.db.base import UTCDateTime
from reachout.db.engine import Database
from reachout.kit.clock import FakeClock

MAX_PASSES = 200

# What is pending, as (how many, when the first is due); a row is due when its time has come (`kit.jobs`).
QUERIES = {
    # Queued (a lease moves `next_attempt_at` to its end, so a claimed message still counts until settled).
    "queued outbound messages": (
        "SELECT count(*) AS n, min(next_attempt_at) AS due FROM messages "
        "WHERE status = 'queued' AND direction = 'outbound'"
    ),
    "sandbox reports": (
        "SELECT count(*) AS n, min(next_report_at) AS due FROM sandbox_messages "
        "WHERE next_report_at IS NOT NULL"
    ),
    "conversation jobs": "SELECT count(*) AS n, min(due_at) AS due FROM conversation_jobs",
    # To enabled endpoints only: a disabled one's wait until an operator enables it.
    "webhook deliveries": (
        "SELECT count(*) AS n, min(d.due_at) AS due FROM webhook_deliveries d "
        "JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND e.enabled"
    ),
}


@dataclass(frozen=True)
class Pending:
    """Rows of one kind still to be worked, and when the first of them is due (None: never, by itself)."""

    kind: str
    count: int
    due: datetime | None

    def __str__(self) -> str:
        when = self.due.isoformat() if self.due is not None else "never"
        return f"{self.count} {self.kind} (first due {when})"


async def pending(database: Database) -> list[Pending]:
    """Every kind of work with rows left, in the order of QUERIES."""
    found = []
    async with database.read() as session:
        for kind, sql in QUERIES.items():
            # Typed, so SQLite's stored text comes back as the aware datetime PostgreSQL returns.
            query = text(sql).columns(n=Integer, due=UTCDateTime)
            row = (await session.execute(query)).one()
            if row.n:
                found.append(Pending(kind, int(row.n), row.due))
    return found


async def settle(
    database: Database,
    clock: FakeClock,
    work: Callable[[], Awaitable[int]],
    *,
    within: float | None = None,
    max_passes: int = MAX_PASSES,
) -> int:
    """Run `work` (a worker pass returning how many items it handled) until a pass handles nothing and
    nothing is pending, moving `clock` to the next due time whenever nothing is due; returns the passes.

    `within`: only what falls due in that many seconds from now; later work is left pending."""
    horizon = None if within is None else clock.now() + timedelta(seconds=within)
    for passes in range(1, max_passes + 1):
        if await work():
            continue  # more may be due at this same instant
        left = await pending(database)
        due = [p.due for p in left if p.due is not None and (horizon is None or p.due <= horizon)]
        if not due:
            if horizon is None and left:
                raise AssertionError(f"pending, and never due by itself: {', '.join(map(str, left))}")
            return passes
        # Time only moves forward: work already due that a pass did not take is the bound's to report.
        if min(due) > clock.now():
            clock.set(min(due))
    left = await pending(database)
    raise AssertionError(f"still pending after {max_passes} worker passes: {', '.join(map(str, left))}")
