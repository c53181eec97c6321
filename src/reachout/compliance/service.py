"""Consent: who may be messaged. An opted-out number is sent nothing but the confirmation of its opt-out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance import repository
from reachout.events import service as events
from reachout.events.schemas import NewEvent
from reachout.events.types import EventType
from reachout.kit.clock import iso_utc


async def opted_out(session: AsyncSession, project_id: str, numbers: Iterable[str]) -> set[str]:
    """The numbers among these that opted out of the project's messages."""
    return await repository.opted_out_numbers(session, project_id, numbers)


async def is_opted_out(session: AsyncSession, project_id: str, number: str) -> bool:
    """Whether one number opted out of the project's messages."""
    return await repository.get_opt_out(session, project_id, number) is not None


async def opt_out(session: AsyncSession, project_id: str, number: str, keyword: str, at: datetime) -> bool:
    """Record an opt-out and its event; False if the number had already opted out (it keeps its first
    keyword and time)."""
    if await repository.get_opt_out(session, project_id, number) is not None:
        return False
    if not await repository.add_opt_out(session, project_id, number, keyword, at):
        return False  # a racing transaction recorded it first
    await _record(session, EventType.CONTACT_OPTED_OUT, project_id, number, keyword, at)
    return True


async def opt_in(session: AsyncSession, project_id: str, number: str, keyword: str, at: datetime) -> bool:
    """Forget an opt-out and record its event; False if the number had not opted out."""
    if not await repository.remove_opt_out(session, project_id, number):
        return False
    await _record(session, EventType.CONTACT_OPTED_IN, project_id, number, keyword, at)
    return True


async def _record(
    session: AsyncSession, kind: EventType, project_id: str, number: str, keyword: str, at: datetime
) -> None:
    data = {
        "project_id": project_id,
        "phone_number": number,
        "opted_out": kind is EventType.CONTACT_OPTED_OUT,
        "keyword": keyword,  # the word the person texted, or `carrier:<code>` when a carrier said so
        "changed_at": iso_utc(at),
    }
    await events.record(session, [NewEvent(kind, at, project_id, data, source=keyword)], at)


class AutoReply(StrEnum):
    """The answers reachout sends on its own, each at most once per person and window."""

    HELP = "help"
    OPT_OUT = "opt-out"  # the confirmation of an opt-out
    OPT_IN = "opt-in"  # the confirmation of an opt-in
    FALLBACK = "fallback"  # the project's text when its agent could not answer


async def may_auto_reply(
    session: AsyncSession, project_id: str, number: str, kind: AutoReply, now: datetime, window_seconds: float
) -> bool:
    """Whether this person may be sent this automatic answer now; if so, it is counted as sent."""
    since = now - timedelta(seconds=window_seconds)
    return await repository.mark_auto_reply(session, project_id, number, kind.value, now, since)
