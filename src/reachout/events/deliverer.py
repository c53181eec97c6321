"""The webhook deliverer: a worker runner that leases due deliveries and posts each, signed, to its endpoint.

Each request runs as a task of its own, so a slow endpoint holds only its own deliveries: a claim takes at
most `endpoint_concurrency` of one endpoint's at a time, and never waits for a batch to finish before the
next. Results are written as they come, many to a transaction while one is committing, each only if the
lease still holds it (a late result changes nothing); a crash leaves leases that expire, and the delivery is
made again under the same `webhook-id` (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.engine import Database
from reachout.events import deliveries_repository as repository
from reachout.events import signing
from reachout.events.attempts import RESPONSE_BODY_KEPT, Health, Verdict, health_after, judge
from reachout.events.schemas import AttemptResult, LeasedDelivery
from reachout.kit.after_commit import LogLine, log_after_commit
from reachout.kit.clock import Clock
from reachout.kit.jobs.leases import Lease
from reachout.kit.jobs.retry import FixedSchedule, parse_retry_after
from reachout.logs import get_logger

log = get_logger("webhooks")

# Standard Webhooks' recommended schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
# (REACHOUT_WEBHOOKS_RETRY_SCHEDULE_SECONDS, whose default is this).
DEFAULT_SCHEDULE = FixedSchedule((0.0, 5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0))


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are made: the schedule, a request's timeout, how many at once (in all and per
    endpoint), and how long an endpoint may fail every attempt before it is disabled."""

    timeout_seconds: float = 15.0
    # A lease lasts the request's timeout and this much more, for writing its result.
    lease_margin_seconds: float = 30.0
    disable_after_seconds: float = 5 * 86_400.0
    batch_size: int = 200
    concurrency: int = 128
    endpoint_concurrency: int = 16
    schedule: FixedSchedule = DEFAULT_SCHEDULE


class WebhookDeliverer:
    """Delivers events to customers' endpoints; safe to run in many processes against one database."""

    name = "webhooks"

    def __init__(
        self,
        database: Database,
        clock: Clock,
        client: httpx.AsyncClient,
        policy: DeliveryPolicy,
        *,
        owner: str,
    ) -> None:
        self._database = database
        self._clock = clock
        self._client = client
        self._policy = policy
        self._owner = owner
        self.batch_size = policy.batch_size
        self._in_flight: Counter[str] = Counter()  # requests under way, by endpoint
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: list[tuple[AttemptResult, str]] = []  # results to write, with their lease's token
        self._writer: asyncio.Task[None] | None = None
        # Told when room frees up or results are written (the worker's wake-up for this runner).
        self.on_room: Callable[[], None] = lambda: None

    async def run_once(self) -> int:
        """Lease what is due (as much as there is room for) and start each request; returns how many."""
        room_left = self._policy.concurrency - sum(self._in_flight.values())
        if room_left <= 0:
            return 0
        per_endpoint = self._policy.endpoint_concurrency
        room = {endpoint: per_endpoint - n for endpoint, n in self._in_flight.items() if n}
        now = self._clock.now()
        lease = Lease.take(
            self._owner,
            now + timedelta(seconds=self._policy.timeout_seconds + self._policy.lease_margin_seconds),
        )
        async with self._database.write.begin() as session:
            leased = await repository.claim(
                session, now, lease, min(self.batch_size, room_left), room, per_endpoint
            )
        for delivery in leased:
            self._in_flight[delivery.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(delivery, lease.token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(leased)

    async def drain(self) -> None:
        """Wait until every request under way is answered and its result written."""
        while self._tasks or self._done or (self._writer is not None and not self._writer.done()):
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._writer is not None:
                await asyncio.gather(self._writer, return_exceptions=True)
            await self._write()

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Let requests under way finish (up to `grace_seconds`; the rest are made again, their leases
        expired), write what they got, and let go."""
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self.drain()
        await self._client.aclose()

    async def _deliver(self, delivery: LeasedDelivery, token: str) -> None:
        try:
            result = await self._attempt(delivery)
        finally:
            self._in_flight[delivery.endpoint_id] -= 1
            if self._in_flight[delivery.endpoint_id] <= 0:
                del self._in_flight[delivery.endpoint_id]
        self._done.append((result, token))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        self.on_room()

    async def _attempt(self, delivery: LeasedDelivery) -> AttemptResult:
        """One signed request and what it means for the delivery (never raises for the endpoint's sake)."""
        now = self._clock.now()
        started = time.perf_counter()
        status_code: int | None = None
        failure: str | None = None
        kept: bytes = b""
        retry_after: str | None = None
        try:
            body = signing.payload(delivery.type, delivery.occurred_at, delivery.data)
            headers = signing.headers(delivery.event_id, body, delivery.secrets, now)
            async with asyncio.timeout(self._policy.timeout_seconds):
                async with self._client.stream(
                    "POST", delivery.url, content=body.encode(), headers=headers
                ) as response:
                    status_code = response.status_code
                    retry_after = response.headers.get("retry-after")
                    async for chunk in response.aiter_bytes():
                        kept += chunk
                        if len(kept) >= RESPONSE_BODY_KEPT:  # the rest is not read: it may never end
                            break
        except TimeoutError:
            status_code, failure = None, f"timed out after {self._policy.timeout_seconds:g} s"
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            status_code, failure = None, str(error) or type(error).__name__
        except Exception as error:  # a bug: an attempt that fails, on the schedule, rather than a lost task
            log.exception("webhook attempt failed unexpectedly", delivery_id=delivery.id)
            status_code, failure = None, f"internal error: {type(error).__name__}"
        latency_ms = round((time.perf_counter() - started) * 1000)
        judgement = judge(status_code, failure)
        retry_at = None
        if judgement.verdict is Verdict.RETRY:
            wait = parse_retry_after(retry_after, now) if judgement.honours_retry_after else None
            retry_at = self._policy.schedule.next_attempt(delivery.attempts, self._clock.now(), wait)
        return AttemptResult(
            delivery,
            now,
            status_code,
            latency_ms,
            judgement.error,
            kept[:RESPONSE_BODY_KEPT].decode("utf-8", "replace") if kept else None,
            judgement.verdict,
            retry_at,
        )

    async def _write_all(self) -> None:
        while self._done:
            try:
                await self._write()
            except Exception:  # the leases expire and the deliveries are made again: logged, not lost
                log.exception("writing webhook attempts failed; their deliveries will be made again")
                return
        self.on_room()

    async def _write(self) -> None:
        batch, self._done = self._done, []
        if not batch:
            return
        by_token: dict[str, list[AttemptResult]] = {}
        for result, token in batch:
            by_token.setdefault(token, []).append(result)
        async with self._database.write.begin() as session:
            recorded: list[AttemptResult] = []
            for token, results in by_token.items():
                recorded.extend(await repository.record(session, results, token))
            lines = await self._endpoint_health(session, recorded)
            log_after_commit(session, log, lines)

    async def _endpoint_health(self, session: AsyncSession, results: list[AttemptResult]) -> list[LogLine]:
        """Move each endpoint's standing on by its attempts; disable one that answered 410 or has failed
        every attempt for too long. Returns the log lines of those disabled."""
        by_endpoint: dict[str, list[tuple[datetime, Verdict]]] = {}
        for result in results:
            by_endpoint.setdefault(result.delivery.endpoint_id, []).append(
                (result.attempted_at, result.verdict)
            )
        endpoints = await repository.lock_endpoints(session, by_endpoint)
        lines: list[LogLine] = []
        for endpoint_id, attempts in by_endpoint.items():
            endpoint = endpoints.get(endpoint_id)
            if endpoint is None:  # removed from the file meanwhile
                continue
            before = Health(endpoint.failing_since)
            after = health_after(before, attempts, self._policy.disable_after_seconds)
            values: dict[str, object] = {}
            if after.failing_since != endpoint.failing_since:
                values["failing_since"] = after.failing_since
            if after.disable is not None and endpoint.enabled:
                at = max(at for at, _ in attempts)
                values.update(enabled=False, disabled_reason=after.disable, disabled_at=at, updated_at=at)
                fields = {
                    "endpoint_id": endpoint_id,
                    "project_id": endpoint.project_id,
                    "reason": after.disable,
                }
                lines.append((logging.WARNING, "webhook endpoint disabled", fields))
            if values:
                await repository.set_endpoint(session, endpoint_id, values)
        return lines
