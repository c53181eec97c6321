"""Messages' events, recorded through the one event log with a view of each message as it now stands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.delivery.failures import failure_for
from reachout.events import service as events
from reachout.events.schemas import NewEvent
from reachout.kit.clock import iso_utc, iso_utc_or_none
from reachout.messaging import repository
from reachout.messaging.schemas import MessageEvent, Snapshot


async def record(session: AsyncSession, changes: Sequence[MessageEvent], now: datetime) -> None:
    """Record what happened to these messages, once their rows say so (in this transaction)."""
    if not changes:
        return
    views = await repository.snapshots(session, [change.message_id for change in changes])
    recorded: list[NewEvent] = []
    for change in changes:
        view = views.get(change.message_id)
        if view is None:  # not a message of ours: nothing to show or tell
            continue
        details = change.details
        if change.error_code is not None:
            details = {**details, "error_code": change.error_code}
        recorded.append(
            NewEvent(
                change.type,
                change.occurred_at,
                view.project_id,
                message_data(view),
                view.id,
                view.conversation_id,
                change.source,
                details,
            )
        )
    await events.record(session, recorded, now)


def message_data(view: Snapshot) -> dict[str, Any]:
    """A message as its events' payloads show it."""
    code = view.error_code
    return {
        "id": view.id,
        "project_id": view.project_id,
        "conversation_id": view.conversation_id,
        "use_case_id": view.use_case_id,
        "direction": view.direction,
        "channel": view.channel,
        "from": view.from_number,
        "to": view.to_number,
        "body": view.body,
        "status": view.status,
        "error_code": code,
        "error_message": None if code is None else (view.error_message or failure_for(code).description),
        "segments": view.num_segments,
        "encoding": view.encoding,
        "carrier": view.carrier,
        "carrier_sid": view.carrier_sid,
        "created_at": iso_utc(view.created_at),
        "handed_off_at": iso_utc_or_none(view.handed_off_at),
        "delivered_at": iso_utc_or_none(view.delivered_at),
        "errored_at": iso_utc_or_none(view.errored_at),
        "updated_at": iso_utc(view.updated_at),
        "metadata": _metadata(view.metadata),
    }


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if metadata is None else dict(metadata)
