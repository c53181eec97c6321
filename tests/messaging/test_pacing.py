"""The dispatcher paces each sender and brand, sends replies first, and cancels what outlived its validity."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from reachout.carriers.base import Accepted, CarrierKind, OutboundText, Rejected, SendResult
from reachout.carriers.registry import CarrierRegistry
from reachout.compliance import service as compliance
from reachout.conversations.service import UndeliverableGreetings
from reachout.db.engine import Database
from reachout.delivery.channels import Channel
from reachout.delivery.failures import failure_for
from reachout.kit.clock import Clock, FakeClock, SystemClock
from reachout.kit.jobs.retry import RetryStrategy
from reachout.messaging import claims, results, service
from reachout.messaging.dispatcher import Dispatcher
from reachout.messaging.models import Message
from reachout.messaging.schemas import ConversationText, SendOutcome
from reachout.outreach import service as outreach
from reachout.outreach.service import plan_greeting
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.routing.models import PacingState
from reachout.tenancy.service import Directory, RateLimiter
from tests.support import pending
from tests.support.provisioning import CONNECTOR, SECOND_SENDER, SENDER, standard_document

THREE_SEGMENTS = "x" * 400  # GSM-7: 153 characters a segment once split


class ClockedCarrier:
    """A carrier double that accepts everything and notes the instant, on `clock`, each send reached it."""

    kind = CarrierKind.SANDBOX

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sends: list[tuple[datetime, OutboundText]] = []

    async def send(self, text: OutboundText) -> SendResult:
        self.sends.append((self.clock.now(), text))
        return Accepted(f"SM{len(self.sends):032x}")

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        return ()


async def provision(database: Database, clock: FakeClock, **numbers: dict[str, Any]) -> None:
    """The standard document with some of the clinic's numbers changed (keyed by SENDER / SECOND_SENDER)."""
    document = standard_document()
    account = document["accounts"][0]
    account["brands"] = [{"id": "acme-health", "throughput_mps": 1}]
    for spec in account["projects"][0]["numbers"]:
        spec.update(numbers.get(spec["number"], {}))
    async with database.write.begin() as session:
        await provisioning.apply(session, loader.parse(document, "test"), clock.now())


async def accept(database: Database, clock: Clock, body: str, user: str, sender: str = SENDER) -> str:
    project = await Directory(database.read, 0).project_for_connector("acme", CONNECTOR)
    async with database.write.begin() as session:
        [accepted] = await outreach.accept_first_messages(
            session,
            [await plan_greeting(project, to_number=user, body=body, agent_number=sender)],
            clock.now(),
            RateLimiter(),
        )
    assert not isinstance(accepted, Exception)
    return accepted.message_id


def dispatcher(database: Database, clock: Clock, carrier: ClockedCarrier, batch: int = 10) -> Dispatcher:
    return Dispatcher(
        database,
        CarrierRegistry.of_texts({CarrierKind.SANDBOX: carrier}),  # type: ignore[dict-item]
        clock,
        owner="pacer",
        batch_size=batch,
        concurrency=4,
        lease_seconds=30,
        retry=RetryStrategy(2.0, 3, jitter=0.0),
        horizon_seconds=0.5,
        failures=UndeliverableGreetings(),
    )


async def run_until_sent(worker: Dispatcher, clock: FakeClock, carrier: ClockedCarrier, count: int) -> None:
    """Dispatcher passes as the worker loop makes them, polling every 0.2 s of fake time when idle."""
    for _ in range(2000):
        if len(carrier.sends) >= count:
            return
        if await worker.run_once() == 0:
            clock.advance(0.2)
    raise AssertionError(f"only {len(carrier.sends)} of {count} sends happened")


def gaps(carrier: ClockedCarrier) -> list[float]:
    times = [at for at, _ in carrier.sends]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


async def test_a_one_mps_number_sends_a_segment_a_second_on_time(
    database: Database, clock: FakeClock
) -> None:
    await provision(database, clock, **{SENDER: {"throughput_mps": 1}})
    for n in range(5):
        await accept(database, clock, f"Hello {n}", f"+1415555{2000 + n:04d}")
    start = clock.now()
    carrier = ClockedCarrier(clock)
    await run_until_sent(dispatcher(database, clock, carrier), clock, carrier, 5)
    lead = timedelta(seconds=claims.PACING_LEAD_SECONDS)  # the claim commits before the first goes
    assert [at - start for at, _ in carrier.sends] == [lead + timedelta(seconds=n) for n in range(5)]
    assert [t.body for _, t in carrier.sends] == [f"Hello {n}" for n in range(5)], "first come, first sent"


async def test_a_three_segment_message_costs_three_seconds_of_a_one_mps_number(
    database: Database, clock: FakeClock
) -> None:
    await provision(database, clock, **{SENDER: {"throughput_mps": 1}})
    await accept(database, clock, THREE_SEGMENTS, "+14155552000")
    await accept(database, clock, "short", "+14155552001")
    carrier = ClockedCarrier(clock)
    await run_until_sent(dispatcher(database, clock, carrier), clock, carrier, 2)
    assert [t.num_segments for _, t in carrier.sends] == [3, 1]
    assert gaps(carrier) == [3.0]


async def test_numbers_of_one_brand_share_the_brands_cap(database: Database, clock: FakeClock) -> None:
    brand = {"throughput_mps": 10, "brand": "acme-health"}
    await provision(database, clock, **{SENDER: brand, SECOND_SENDER: brand})
    for n in range(4):
        await accept(
            database, clock, f"Hi {n}", f"+1415555{2000 + n:04d}", SENDER if n % 2 else SECOND_SENDER
        )
    carrier = ClockedCarrier(clock)
    await run_until_sent(dispatcher(database, clock, carrier), clock, carrier, 4)
    assert {t.from_number for _, t in carrier.sends} == {SENDER, SECOND_SENDER}
    assert gaps(carrier) == [1.0, 1.0, 1.0], "the brand's 1 MPS, not each number's 10"


async def test_an_unlimited_number_is_not_paced(database: Database, clock: FakeClock) -> None:
    await provision(database, clock, **{SENDER: {"throughput_mps": "unlimited"}})
    for n in range(20):
        await accept(database, clock, f"Hello {n}", f"+1415555{2000 + n:04d}")
    carrier = ClockedCarrier(clock)
    await run_until_sent(dispatcher(database, clock, carrier, batch=50), clock, carrier, 20)
    assert set(gaps(carrier)) == {0.0}


async def test_a_reply_overtakes_first_messages_queued_on_its_sender(
    database: Database, clock: FakeClock
) -> None:
    await provision(database, clock, **{SENDER: {"throughput_mps": 1}})
    firsts = [await accept(database, clock, f"First {n}", f"+1415555{2000 + n:04d}") for n in range(4)]
    carrier = ClockedCarrier(clock)
    worker = dispatcher(database, clock, carrier)
    await run_until_sent(worker, clock, carrier, 1)
    async with database.read() as session:
        conversation_id = (
            await session.execute(select(Message.conversation_id).where(Message.id == firsts[0]))
        ).scalar_one()
    async with database.write.begin() as session:
        await service.queue_texts(
            session,
            [ConversationText("clinic", conversation_id, Channel.SMS, SENDER, "+14155552000", "Your reply")],
            clock.now(),
        )
    await run_until_sent(worker, clock, carrier, 5)
    assert [t.body for _, t in carrier.sends] == ["First 0", "Your reply", "First 1", "First 2", "First 3"]
    assert gaps(carrier) == [1.0, 1.0, 1.0, 1.0], "the reply took a turn; it did not add one"


async def test_a_message_queued_past_its_validity_period_is_canceled_with_30036(
    database: Database, clock: FakeClock
) -> None:
    message_id = await accept(database, clock, "Too late", "+14155552000")
    clock.advance(36_000)
    carrier = ClockedCarrier(clock)
    assert await dispatcher(database, clock, carrier).run_once() == 1
    assert carrier.sends == []
    async with database.read() as session:
        row = await session.get(Message, message_id)
    assert row is not None
    assert (row.status, row.error_code, row.errored_at) == ("canceled", 30036, clock.now())
    assert row.next_attempt_at is None


async def test_a_backlog_longer_than_the_validity_period_cancels_its_tail_at_expiry(
    database: Database, clock: FakeClock
) -> None:
    await provision(database, clock, **{SENDER: {"throughput_mps": 1}})
    ids = [await accept(database, clock, f"Hello {n}", f"+1415555{2000 + n:04d}") for n in range(3)]
    async with database.write.begin() as session:  # a validity of 1.5 s, as a dialect may ask for
        for message_id in ids:
            row = await session.get(Message, message_id)
            assert row is not None
            row.expires_at = clock.now() + timedelta(seconds=1.5)
    carrier = ClockedCarrier(clock)
    await pending.settle(database, clock, dispatcher(database, clock, carrier).run_once)
    async with database.read() as session:
        rows = {
            r.id: r for r in (await session.execute(select(Message).where(Message.id.in_(ids)))).scalars()
        }
    assert [rows[i].status for i in ids] == ["sending", "sending", "canceled"]
    assert rows[ids[2]].error_code == 30036
    assert len(carrier.sends) == 2


async def test_a_carrier_refusal_because_the_person_unsubscribed_records_an_opt_out(
    database: Database, clock: FakeClock
) -> None:
    code = 21610

    class Refusing(ClockedCarrier):
        async def send(self, text: OutboundText) -> SendResult:
            return Rejected(failure_for(code))

    message_id = await accept(database, clock, "Hello", "+14155552000")
    await dispatcher(database, clock, Refusing(clock)).run_once()
    async with database.read() as session:
        row = await session.get(Message, message_id)
        assert row is not None and (row.status, row.error_code) == ("failed", code)
        assert await compliance.is_opted_out(session, "clinic", "+14155552000")


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_slots_start_from_when_the_lines_rows_were_locked_not_from_before(
    database: Database, clock: FakeClock
) -> None:
    """Another worker holds the line's row for 0.3 s: slots planned from before that wait would be past."""
    await provision(database, clock, **{SENDER: {"throughput_mps": 10}})
    wall = SystemClock()
    for n in range(6):
        await accept(database, wall, f"Hello {n}", f"+1415555{2000 + n:04d}")
    carrier = ClockedCarrier(wall)
    worker = dispatcher(database, wall, carrier)
    async with database.write.begin() as session:  # the line exists and is free
        await session.execute(insert(PacingState).values(key=f"number:{SENDER}", theoretical_arrival=0.0))

    async def another_claim_holding_the_row() -> None:
        async with database.write.begin() as session:
            await session.execute(select(PacingState).with_for_update())
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(another_claim_holding_the_row())
    await asyncio.sleep(0.05)
    while len(carrier.sends) < 6:
        if await worker.run_once() == 0:
            await asyncio.sleep(0.02)
    await holder
    assert min(gaps(carrier)) >= 0.1 - 0.02, gaps(carrier)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_transactions_recording_one_persons_opt_out_both_commit(
    database: Database, clock: FakeClock
) -> None:
    ids = [await accept(database, clock, body, "+14155552000") for body in ("one", "two")]
    async with database.write.begin() as session:
        claim = await claims.claim(session, clock, "w", timedelta(seconds=30), 0.5, 10)
        claimed = {m.id: m for m in claim.messages}
    assert claim.lease is not None
    refused = Rejected(failure_for(21610))

    async def record(message_id: str, hold: float) -> None:
        async with database.write.begin() as session:
            outcome = SendOutcome(claimed[message_id], "sandbox", refused)
            await results.record_send_results(
                session, [outcome], clock.now(), RetryStrategy(2.0, 3, jitter=0.0), claim.lease
            )
            await asyncio.sleep(hold)  # the rest of a worker's transaction

    await asyncio.gather(record(ids[0], 0.3), record(ids[1], 0.0))
    async with database.read() as session:
        statuses = [(await session.get(Message, i)).status for i in ids]  # type: ignore[union-attr]
        assert statuses == ["failed", "failed"], "neither batch's results were lost"
        assert await compliance.is_opted_out(session, "clinic", "+14155552000")
