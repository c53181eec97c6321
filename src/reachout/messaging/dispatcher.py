"""The dispatcher: leases queued messages from the outbox and hands them to their carriers.

A claim commits before any carrier is called and a result commits after, so a crash in between leaves a
lease that simply expires. Before any later attempt the dispatcher asks the carrier whether it already has
the message (`Carrier.find`), and only a confirmed absence is sent again (rule 2).

Each claim paces its senders (`routing.pacing`): a message is leased with a slot no further ahead than the
horizon, and handed over when its slot comes; one whose sender is busy for longer stays queued. What it fails
itself, and what carriers refuse, goes down the status path with `failures`, the port of the domain above.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from reachout.carriers.base import CarrierUnavailable, OutboundText
from reachout.carriers.registry import CarrierRegistry, UnknownCarrier
from reachout.db.engine import Database
from reachout.kit.clock import Clock
from reachout.kit.jobs.retry import RetryStrategy
from reachout.logs import get_logger
from reachout.messaging import claims, results
from reachout.messaging.reports import DeliveryFailures
from reachout.messaging.schemas import ClaimedMessage, SendOutcome
from reachout.tenancy.schemas import SenderProfile

log = get_logger("dispatcher")


class Dispatcher:
    """Sends due messages in batches; safe to run in many processes against one database (a worker runner)."""

    name = "dispatch"

    def __init__(
        self,
        database: Database,
        carriers: CarrierRegistry,
        clock: Clock,
        *,
        owner: str,
        batch_size: int,
        concurrency: int,
        lease_seconds: float,
        retry: RetryStrategy,
        horizon_seconds: float,
        failures: DeliveryFailures,
    ) -> None:
        self._database = database
        self._failures = failures
        self._carriers = carriers
        self._clock = clock
        self._owner = owner
        self.batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._lease = timedelta(seconds=lease_seconds)
        self._retry = retry
        if horizon_seconds <= claims.PACING_LEAD_SECONDS:
            # Every paced slot is at least the lead away, so a shorter horizon would defer them all forever.
            raise ValueError(
                f"the pacing horizon ({horizon_seconds} s) must exceed "
                f"the lead ({claims.PACING_LEAD_SECONDS} s)"
            )
        self._horizon = horizon_seconds

    async def run_once(self) -> int:
        """Claim one batch of due messages and send it; returns how many due messages it looked at."""
        async with self._database.write.begin() as session:
            claim = await claims.claim(
                session,
                self._clock,
                self._owner,
                self._lease,
                self._horizon,
                self.batch_size,
                failures=self._failures,
            )
        if claim.messages and claim.lease is not None:
            taken: set[str] = set()  # sids this batch's messages settled on with `find`
            outcomes = await asyncio.gather(
                *(
                    self._send(m, claim.senders.get(m.from_number), claim.messaging_service(m), taken)
                    for m in claim.messages
                )
            )
            async with self._database.write.begin() as session:
                await results.record_send_results(
                    session, outcomes, self._clock.now(), self._retry, claim.lease, failures=self._failures
                )
        return claim.looked_at

    async def _send(
        self,
        message: ClaimedMessage,
        sender: SenderProfile | None,
        messaging_service_sid: str | None,
        taken: set[str],
    ) -> SendOutcome:
        if sender is None:
            return SendOutcome(message, None, None)
        carrier_kind = sender.carrier
        try:
            carrier = self._carriers.get(carrier_kind)
        except UnknownCarrier:
            log.error("sender's carrier is not configured", carrier=carrier_kind, message_id=message.id)
            return SendOutcome(message, carrier_kind, None)
        text = OutboundText(
            reference=message.id,
            channel=message.channel,
            from_number=message.from_number,
            to_number=message.to_number,
            body=message.body,
            num_segments=message.num_segments,
            messaging_service_sid=messaging_service_sid,
            content_sid=message.content_sid,
            content_variables=message.content_variables,
        )
        await self._clock.sleep_until(message.send_at)
        async with self._slots:
            try:
                if message.attempts > 1:
                    # An earlier attempt may have reached the carrier (it timed out, or this process died
                    # before recording it): a send the carrier already has is recorded, never repeated.
                    candidates = await carrier.find(text, message.created_at)
                    if candidates:
                        async with self._database.read() as session:
                            found = await claims.earlier_send(session, message.id, candidates, taken)
                        if found is not None:
                            return SendOutcome(message, carrier_kind, found)
                return SendOutcome(message, carrier_kind, await carrier.send(text))
            except CarrierUnavailable as error:
                log.warning(
                    "carrier unavailable; will retry",
                    carrier=carrier_kind,
                    message_id=message.id,
                    error=str(error),
                )
                return SendOutcome(message, carrier_kind, error)
            except Exception as error:
                # One message's surprise must not lose the batch's results. Whether the carrier took it is
                # unknown, exactly as after a timeout: it is retried, `find` first.
                log.exception(
                    "send failed unexpectedly; will retry", carrier=carrier_kind, message_id=message.id
                )
                return SendOutcome(message, carrier_kind, CarrierUnavailable(type(error).__name__))
