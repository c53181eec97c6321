"""The dispatcher decides: retry what may succeed later, fail what never will, re-send an abandoned claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from reachout.carriers.base import (
    Accepted,
    CarrierKind,
    CarrierUnavailable,
    OutboundText,
    Rejected,
    SendResult,
)
from reachout.carriers.registry import CarrierRegistry
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.carriers.sandbox.models import SandboxMessage
from reachout.conversations.service import UndeliverableGreetings
from reachout.db.engine import Database
from reachout.delivery.channels import Channel
from reachout.delivery.failures import failure_for
from reachout.events.models import Event
from reachout.kit.clock import FakeClock
from reachout.kit.jobs.retry import RetryStrategy
from reachout.messaging import claims, service
from reachout.messaging.dispatcher import Dispatcher
from reachout.messaging.models import Message
from reachout.messaging.schemas import ConversationText
from reachout.outreach import service as outreach
from reachout.outreach.service import plan_greeting
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.tenancy.service import Directory, RateLimiter
from tests.support.provisioning import CONNECTOR, USER, standard_document

RETRY = RetryStrategy(base_seconds=2.0, max_attempts=3, jitter=0.0)
LEASE = timedelta(seconds=30)


class ScriptedCarrier:
    """A carrier double that answers from a script, one answer per call, and remembers every call."""

    kind = CarrierKind.SANDBOX

    def __init__(self, *answers: SendResult | CarrierUnavailable) -> None:
        self.answers = list(answers)
        self.calls: list[OutboundText] = []
        self.finds: list[OutboundText] = []
        self.held: Accepted | CarrierUnavailable | None = None  # what `find` answers

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        self.finds.append(text)
        if isinstance(self.held, CarrierUnavailable):
            raise self.held
        return () if self.held is None else (self.held,)

    async def send(self, text: OutboundText) -> SendResult:
        self.calls.append(text)
        answer = self.answers.pop(0)
        if isinstance(answer, CarrierUnavailable):
            raise answer
        return answer


async def accept_one(database: Database, clock: FakeClock) -> str:
    project = await Directory(database.read, 0).project_for_connector("acme", CONNECTOR)
    async with database.write.begin() as session:
        [accepted] = await outreach.accept_first_messages(
            session,
            [await plan_greeting(project, to_number=USER, body="Hello", agent_number=None)],
            clock.now(),
            RateLimiter(),
        )
    assert not isinstance(accepted, Exception)
    return accepted.message_id


def dispatcher(database: Database, clock: FakeClock, carrier: object) -> Dispatcher:
    return Dispatcher(
        database,
        CarrierRegistry.of_texts({CarrierKind.SANDBOX: carrier}),  # type: ignore[dict-item]
        clock,
        owner="test-worker",
        batch_size=10,
        concurrency=4,
        lease_seconds=30,
        retry=RETRY,
        horizon_seconds=0.5,
        failures=UndeliverableGreetings(),
    )


@pytest.fixture
def sandbox(database: Database, clock: FakeClock) -> SandboxCarrier:
    return SandboxCarrier(database.write, clock, sent_after=1, delivered_after=2)


async def message(database: Database, message_id: str) -> Message:
    async with database.read() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def test_a_retryable_refusal_is_retried_with_backoff_under_the_same_reference(
    database: Database, clock: FakeClock
) -> None:
    carrier = ScriptedCarrier(Rejected(failure_for(20429)), Accepted("SM" + "a" * 32))
    message_id = await accept_one(database, clock)
    worker = dispatcher(database, clock, carrier)

    assert await worker.run_once() == 1
    queued = await message(database, message_id)
    assert (queued.status, queued.attempts, queued.lease_owner) == ("queued", 1, None)
    assert queued.next_attempt_at == clock.now() + timedelta(seconds=2)

    clock.advance(1.9)
    assert await worker.run_once() == 0, "not before the backoff has passed"
    clock.advance(0.1)
    assert await worker.run_once() == 1
    sent = await message(database, message_id)
    assert (sent.status, sent.carrier_sid, sent.attempts) == ("sending", "SM" + "a" * 32, 2)
    assert [c.reference for c in carrier.calls] == [message_id, message_id]


async def test_retries_stop_at_the_limit_and_the_message_fails(database: Database, clock: FakeClock) -> None:
    carrier = ScriptedCarrier(*[Rejected(failure_for(20429))] * 3)
    message_id = await accept_one(database, clock)
    worker = dispatcher(database, clock, carrier)
    for _ in range(3):
        assert await worker.run_once() == 1
        clock.advance(3600)
    failed = await message(database, message_id)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", 20429, 3)
    assert await worker.run_once() == 0


async def test_an_unreachable_carrier_is_retried_later(database: Database, clock: FakeClock) -> None:
    carrier = ScriptedCarrier(CarrierUnavailable("connect timeout"), Accepted("SM" + "b" * 32))
    message_id = await accept_one(database, clock)
    worker = dispatcher(database, clock, carrier)
    await worker.run_once()
    assert (await message(database, message_id)).status == "queued"
    clock.advance(2)
    await worker.run_once()
    assert (await message(database, message_id)).status == "sending"


async def test_an_unknown_outcome_the_carrier_did_take_is_recorded_not_resent(
    database: Database, clock: FakeClock
) -> None:
    carrier = ScriptedCarrier(CarrierUnavailable("read timeout"))
    message_id = await accept_one(database, clock)
    worker = dispatcher(database, clock, carrier)
    await worker.run_once()
    carrier.held = Accepted("SM" + "c" * 32)  # it had reached the carrier after all
    clock.advance(2)
    await worker.run_once()
    handed = await message(database, message_id)
    assert (handed.status, handed.carrier_sid) == ("sending", "SM" + "c" * 32)
    assert len(carrier.calls) == 1 and len(carrier.finds) == 1


async def test_nothing_is_resent_while_the_carrier_cannot_tell(database: Database, clock: FakeClock) -> None:
    carrier = ScriptedCarrier(CarrierUnavailable("read timeout"), Accepted("SM" + "d" * 32))
    message_id = await accept_one(database, clock)
    worker = dispatcher(database, clock, carrier)
    await worker.run_once()
    carrier.held = CarrierUnavailable("listing timed out")
    clock.advance(2)
    await worker.run_once()
    assert (await message(database, message_id)).status == "queued"
    assert len(carrier.calls) == 1  # not sent again blind
    carrier.held = None  # the carrier now says it never got it
    clock.advance(10)
    await worker.run_once()
    assert (await message(database, message_id)).carrier_sid == "SM" + "d" * 32
    assert len(carrier.calls) == 2


async def test_a_permanent_refusal_fails_at_once(database: Database, clock: FakeClock) -> None:
    carrier = ScriptedCarrier(Rejected(failure_for(21211)))
    message_id = await accept_one(database, clock)
    await dispatcher(database, clock, carrier).run_once()
    failed = await message(database, message_id)
    assert (failed.status, failed.error_code, failed.errored_at) == ("failed", 21211, clock.now())
    assert failed.handed_off_at is None


async def test_a_sender_unprovisioned_after_accept_fails_with_21606(
    database: Database, clock: FakeClock
) -> None:
    message_id = await accept_one(database, clock)
    document = standard_document()
    document["accounts"][0]["projects"][0]["numbers"] = []
    async with database.write.begin() as session:
        await provisioning.apply(session, loader.parse(document, "test"), clock.now())
    carrier = ScriptedCarrier()
    await dispatcher(database, clock, carrier).run_once()
    assert carrier.calls == []
    failed = await message(database, message_id)
    assert (failed.status, failed.error_code) == ("failed", 21606)


async def test_an_abandoned_claim_is_sent_again_once_its_lease_expires(
    database: Database, clock: FakeClock, sandbox: SandboxCarrier
) -> None:
    message_id = await accept_one(database, clock)
    # A worker claims the message and dies before recording anything.
    async with database.write.begin() as session:
        [claimed] = (await claims.claim(session, clock, "dead-worker", LEASE, 0.5, 10)).messages
    assert claimed.id == message_id

    worker = dispatcher(database, clock, sandbox)
    assert await worker.run_once() == 0, "the lease is still held"
    clock.advance(31)
    assert await worker.run_once() == 1
    handed_off = await message(database, message_id)
    assert (handed_off.status, handed_off.attempts) == ("sending", 2)


async def test_a_repeated_hand_off_reaches_the_sandbox_once(
    database: Database, clock: FakeClock, sandbox: SandboxCarrier
) -> None:
    """The crash window: the carrier took the message, the worker died before recording it."""
    message_id = await accept_one(database, clock)
    async with database.write.begin() as session:
        [claimed] = (await claims.claim(session, clock, "dead", LEASE, 0.5, 10)).messages
    text = OutboundText(claimed.id, Channel.SMS, claimed.from_number, claimed.to_number, claimed.body, 1)
    first = await sandbox.send(text)
    assert isinstance(first, Accepted)
    clock.advance(31)
    await dispatcher(database, clock, sandbox).run_once()
    async with database.read() as session:
        rows = (await session.execute(select(func.count()).select_from(SandboxMessage))).scalar_one()
        handoffs = (
            await session.execute(
                select(func.count()).select_from(Event).where(Event.type == "message.sending")
            )
        ).scalar_one()
    assert rows == 1
    assert (await message(database, message_id)).carrier_sid == first.sid
    assert handoffs == 1


class ListingCarrier:
    """Answers `find` as Twilio's list does: every earlier send with this body, oldest first."""

    kind = CarrierKind.SANDBOX

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        return tuple(Accepted(sid) for sid, body in self.sent if body == text.body)

    async def send(self, text: OutboundText) -> SendResult:
        self.sent.append((f"SM{len(self.sent):032x}", text.body))
        return Accepted(self.sent[-1][0])


async def test_twins_retried_in_one_batch_never_settle_on_the_same_sid(
    database: Database, clock: FakeClock
) -> None:
    """The same answer queued twice (a HELP sent twice), both re-tried after a crash in which one got out."""
    first = await message(database, await accept_one(database, clock))
    twin = ConversationText(
        "clinic", first.conversation_id, Channel.SMS, first.from_number or "", USER, "Reply HELP"
    )
    async with database.write.begin() as session:
        await service.queue_texts(session, [twin, twin], clock.now())
        claim = await claims.claim(session, clock, "dead", LEASE, 0.5, 10)
    carrier = ListingCarrier()
    [one_twin, *_] = [m for m in claim.messages if m.body == "Reply HELP"]
    await carrier.send(OutboundText(one_twin.id, Channel.SMS, one_twin.from_number, USER, one_twin.body, 1))

    clock.advance(31)
    await dispatcher(database, clock, carrier).run_once()
    async with database.read() as session:
        rows = (
            await session.execute(
                select(Message.body, Message.status, Message.carrier_sid).where(Message.body == "Reply HELP")
            )
        ).all()
    assert [status for _, status, _ in rows] == ["sending", "sending"], "the batch's results were recorded"
    assert len({sid for _, _, sid in rows}) == 2
    assert len(carrier.sent) == 3, "the twin that had got out was found, the other sent once"


class StumblingCarrier(ListingCarrier):
    """Fails with an error no carrier adapter expects, once, for one message body."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.stumble_on: str | None = body

    async def send(self, text: OutboundText) -> SendResult:
        if text.body == self.stumble_on:
            self.stumble_on = None
            raise RuntimeError("a bug in an adapter")
        return await super().send(text)


async def test_an_unexpected_error_in_one_send_is_retried_and_the_rest_of_the_batch_recorded(
    database: Database, clock: FakeClock
) -> None:
    first = await message(database, await accept_one(database, clock))
    other = ConversationText(
        "clinic", first.conversation_id, Channel.SMS, first.from_number or "", USER, "Other"
    )
    async with database.write.begin() as session:
        [other_id] = await service.queue_texts(session, [other], clock.now())
    carrier = StumblingCarrier("Hello")
    worker = dispatcher(database, clock, carrier)
    assert await worker.run_once() == 2
    stumbled, sent = await message(database, first.id), await message(database, other_id)
    assert (stumbled.status, stumbled.lease_owner, stumbled.attempts) == ("queued", None, 1)
    assert (sent.status, sent.carrier_sid) == ("sending", carrier.sent[0][0])

    clock.advance(RETRY.base_seconds)
    assert await worker.run_once() == 1
    assert (await message(database, first.id)).status == "sending", "retried, after asking the carrier first"
    assert [body for _, body in carrier.sent] == ["Other", "Hello"]


def test_a_pacing_horizon_no_longer_than_the_lead_is_refused(database: Database, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="must exceed the lead"):
        Dispatcher(
            database,
            CarrierRegistry.of_texts({}),
            clock,
            owner="w",
            batch_size=10,
            concurrency=4,
            lease_seconds=30,
            retry=RETRY,
            horizon_seconds=claims.PACING_LEAD_SECONDS,
            failures=UndeliverableGreetings(),
        )
