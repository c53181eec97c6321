"""What an account may do with its events and endpoints through reachout's API: read the log and the
attempts, replay an event, recover an endpoint's failures, enable an endpoint again. Each call runs in a
transaction of its own (this is the edge's side of the domain)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.engine import Database
from reachout.errors import ErrorCode, ReachoutError
from reachout.events import deliveries_repository, reading_repository, repository
from reachout.events.models import DeliveryStatus
from reachout.events.reading import AttemptView, EndpointView, EventPage, EventQuery
from reachout.events.schemas import EventView, could_be_id
from reachout.events.service import delivery_row
from reachout.events.types import AUDIT_ONLY, EventType, wanted
from reachout.kit.after_commit import log_after_commit
from reachout.kit.clock import Clock
from reachout.logs import get_logger

log = get_logger("webhooks")
MAX_RECOVERED = 10_000  # events re-sent by one recover call; call again for more


class EventConsole:
    """An account's events and endpoints, for the API."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def page(self, query: EventQuery) -> EventPage:
        """A page of the account's events."""
        async with self._database.read() as session:
            return await reading_repository.page(session, query)

    async def event(self, account_id: str, event_id: str) -> EventView:
        """One of the account's events; NOT_FOUND for any other."""
        async with self._database.read() as session:
            return await _event(session, account_id, event_id)

    async def attempts(
        self, account_id: str, event_id: str, endpoint_id: str | None = None
    ) -> list[AttemptView]:
        """Every attempt to deliver one of the account's events (to one endpoint, if named), newest first."""
        async with self._database.read() as session:
            await _event(session, account_id, event_id)
            if endpoint_id is not None and not could_be_id(endpoint_id):
                return []
            return await reading_repository.attempts(session, event_id=event_id, endpoint_id=endpoint_id)

    async def endpoint_attempts(
        self, account_id: str, endpoint_id: str, before: int | None, limit: int
    ) -> list[AttemptView]:
        """An endpoint's attempts, newest first."""
        async with self._database.read() as session:
            await _endpoint(session, account_id, endpoint_id)
            return await reading_repository.attempts(
                session, endpoint_id=endpoint_id, before=before, limit=limit
            )

    async def endpoints(self, account_id: str) -> list[EndpointView]:
        """The account's endpoints."""
        async with self._database.read() as session:
            return await reading_repository.endpoints(session, account_id)

    async def replay(self, account_id: str, event_id: str, endpoint_id: str | None = None) -> list[str]:
        """Deliver an event again, under the same `webhook-id`, to each enabled endpoint that takes it (or
        the one named); returns the endpoints it goes to."""
        now = self._clock.now()
        async with self._database.write.begin() as session:
            event = await _event(session, account_id, event_id)
            if event.type in AUDIT_ONLY:
                raise ReachoutError(
                    ErrorCode.INVALID_REQUEST, f"'{event.type}' is kept for audit, never delivered."
                )
            if endpoint_id is not None:
                targets = [await _endpoint(session, account_id, endpoint_id)]
                if targets[0].project_id != event.project_id:
                    raise ReachoutError(
                        ErrorCode.INVALID_REQUEST, "That endpoint belongs to another project than the event."
                    )
            else:
                targets = [
                    e
                    for e in await reading_repository.endpoints(session, account_id)
                    if e.project_id == event.project_id and wanted(e.event_types, event.type)
                ]
            targets = [e for e in targets if e.enabled]
            await repository.insert_deliveries(session, [delivery_row(event.id, e.id, now) for e in targets])
            fields = {"event_id": event.id, "endpoints": [e.id for e in targets]}
            log_after_commit(session, log, [(logging.INFO, "event replayed", fields)])
        return [e.id for e in targets]

    async def recover(self, account_id: str, endpoint_id: str, since: datetime) -> int:
        """Send an endpoint again what it failed to get since `since`: its failed deliveries, and the events
        it took that found it disabled. Returns how many deliveries were queued."""
        now = self._clock.now()
        async with self._database.write.begin() as session:
            endpoint = await _endpoint(session, account_id, endpoint_id)
            requeued = await deliveries_repository.requeue(
                session, endpoint.id, (DeliveryStatus.FAILED,), since, now
            )
            missed = [
                event_id
                for event_id, kind in await reading_repository.events_missing_a_delivery(
                    session, endpoint, since, MAX_RECOVERED
                )
                if wanted(endpoint.event_types, EventType(kind))
            ]
            await repository.insert_deliveries(session, [delivery_row(e, endpoint.id, now) for e in missed])
            fields = {"endpoint_id": endpoint.id, "requeued": requeued, "missed": len(missed)}
            log_after_commit(session, log, [(logging.INFO, "webhook deliveries recovered", fields)])
        return requeued + len(missed)

    async def enable(self, account_id: str, endpoint_id: str) -> EndpointView:
        """Enable a disabled endpoint: its count of failing days starts again, and what it holds is due."""
        now = self._clock.now()
        async with self._database.write.begin() as session:
            endpoint = await _endpoint(session, account_id, endpoint_id)
            values: dict[str, Any] = {
                "enabled": True,
                "disabled_reason": None,
                "disabled_at": None,
                "failing_since": None,
                "updated_at": now,
            }
            await deliveries_repository.set_endpoint(session, endpoint.id, values)
            await deliveries_repository.requeue(
                session, endpoint.id, (DeliveryStatus.PENDING,), endpoint.created_at, now
            )
            if not endpoint.enabled:
                fields = {"endpoint_id": endpoint.id, "project_id": endpoint.project_id}
                log_after_commit(session, log, [(logging.INFO, "webhook endpoint enabled", fields)])
            [enabled] = await reading_repository.endpoints(session, account_id, endpoint.id)
        return enabled


async def _event(session: AsyncSession, account_id: str, event_id: str) -> EventView:
    event = (
        await reading_repository.account_event(session, account_id, event_id)
        if could_be_id(event_id)
        else None
    )
    if event is None:
        raise ReachoutError(ErrorCode.NOT_FOUND, f"Event '{event_id}' not found.")
    return event


async def _endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> EndpointView:
    found = (
        await reading_repository.endpoints(session, account_id, endpoint_id)
        if could_be_id(endpoint_id)
        else []
    )
    if not found:
        raise ReachoutError(ErrorCode.NOT_FOUND, f"Webhook endpoint '{endpoint_id}' not found.")
    return found[0]
