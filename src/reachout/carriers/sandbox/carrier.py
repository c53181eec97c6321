"""The sandbox carrier: a simulated carrier that behaves like Twilio and keeps its record in the database.

A send is accepted (or refused, for Twilio's magic numbers) and stored once per reference; `sent` and then
the final status are reported later by `take_due_reports`, through the same path real callbacks take.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.carriers.base import (
    Accepted,
    CarrierKind,
    InboundText,
    OutboundText,
    Rejected,
    SendResult,
    StatusReport,
)
from reachout.carriers.sandbox import repository
from reachout.carriers.sandbox.models import SandboxMessage
from reachout.carriers.sandbox.rules import fate_of
from reachout.carriers.sandbox.schemas import HandsetDirection, HandsetMessage
from reachout.db.group_commit import GroupCommitter
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.kit.clock import Clock

HISTORY_LIMIT = 1000


def new_sid() -> str:
    """A message sid shaped like Twilio's: SM and 32 hex digits."""
    return "SM" + secrets.token_hex(16)


class SandboxCarrier:
    """Implements the carrier port against the sandbox's own table."""

    kind = CarrierKind.SANDBOX

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        sent_after: float,
        delivered_after: float,
        without_receipts: frozenset[str] = frozenset(),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        # Concurrent sends share a commit, as a real carrier's API would not make each caller wait its turn.
        self._handoffs: GroupCommitter[repository.NewSend, str] = GroupCommitter(
            sessions, repository.insert_once, max_batch=500
        )
        self._sent_after = timedelta(seconds=sent_after)
        self._delivered_after = timedelta(seconds=max(sent_after, delivered_after))
        self._without_receipts = without_receipts

    async def send(self, text: OutboundText) -> SendResult:
        fate = fate_of(text.to_number, self._without_receipts)
        if fate.refusal is not None:
            return Rejected(fate.refusal)
        now = self._clock.now()
        row = repository.NewSend(
            sid=new_sid(),
            idempotency_key=text.reference,
            direction=HandsetDirection.TO_HANDSET,
            from_number=text.from_number,
            to_number=text.to_number,
            body=text.body,
            num_segments=text.num_segments,
            final_status=fate.final_status,
            final_error_code=fate.final_error_code,
            next_report_at=now + self._sent_after,
            created_at=now,
        )
        return Accepted(await self._handoffs.submit(row))

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        """The send stored under this text's reference (sends are keyed by it, so `since` adds nothing)."""
        async with self._sessions() as session:
            sid = await repository.sid_for_key(session, text.reference)
        return () if sid is None else (Accepted(sid),)

    async def close(self) -> None:
        """Finish the hand-offs in flight."""
        await self._handoffs.close()

    async def take_due_reports(self, session: AsyncSession, limit: int = 500) -> list[StatusReport]:
        """The status reports now due, marked as made in the caller's transaction.

        A send whose final report is due as well as its `sent` (the worker was behind) has both made in this
        pass, in order, as a carrier that had both to tell would send them one after the other.
        """
        now = self._clock.now()
        reports: list[StatusReport] = []
        marks: list[repository.ReportMark] = []
        for row in await repository.due_for_report(session, now, limit):
            made: list[tuple[MessageStatus, int | None]] = []
            next_at: datetime | None = None
            if row.reported_status is None:
                made.append((MessageStatus.SENT, None))
                # A route without delivery receipts says nothing after `sent`.
                if row.final_status != MessageStatus.SENT:
                    next_at = row.created_at + self._delivered_after
            if row.reported_status is not None or (next_at is not None and next_at <= now):
                made.append((MessageStatus(row.final_status), row.final_error_code))
                next_at = None
            marks.append(repository.ReportMark(row.id, made[-1][0], next_at))
            reports.extend(
                StatusReport(
                    sid=row.sid,
                    reference=row.idempotency_key,
                    status=status,
                    occurred_at=now,
                    error_code=error_code,
                    num_segments=row.num_segments,
                    from_number=row.from_number,
                    source="sandbox",
                )
                for status, error_code in made
            )
        await repository.mark_reported(session, marks)
        return reports

    async def record_inbound(
        self, session: AsyncSession, from_number: str, to_number: str, body: str
    ) -> InboundText:
        """A handset texts an agent number: keep it in the handset's record and return it as inbound."""
        now = self._clock.now()
        row = SandboxMessage(
            sid=new_sid(),
            idempotency_key=None,
            direction=HandsetDirection.FROM_HANDSET,
            from_number=from_number,
            to_number=to_number,
            body=body,
            num_segments=1,
            final_status=MessageStatus.RECEIVED,
            final_error_code=None,
            reported_status=None,
            next_report_at=None,
            created_at=now,
        )
        repository.add(session, row)
        await session.flush()
        return InboundText(
            sid=row.sid,
            channel=Channel.SMS,
            from_number=from_number,
            to_number=to_number,
            body=body,
            received_at=now,
            carrier=self.kind,
        )

    async def handset(self, session: AsyncSession, number: str) -> list[HandsetMessage]:
        """Everything a handset received and sent, oldest first."""
        rows: Sequence[SandboxMessage] = await repository.handset_history(session, number, HISTORY_LIMIT)
        return [
            HandsetMessage(
                direction=HandsetDirection(row.direction),
                from_=row.from_number,
                to=row.to_number,
                body=row.body,
                at=row.created_at,
            )
            for row in rows
            if _reached_handset(row, number)
        ]


def _reached_handset(row: SandboxMessage, number: str) -> bool:
    if row.direction == HandsetDirection.FROM_HANDSET:
        return row.from_number == number
    # An undeliverable text (a landline, say) never reached the handset, so it is not in its record.
    return row.to_number == number and row.final_status in (MessageStatus.DELIVERED, MessageStatus.SENT)
