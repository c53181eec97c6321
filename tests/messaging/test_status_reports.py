"""Status reports through the one status path: out of order, twice, late, unknown — the right end state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reachout.carriers.base import StatusReport
from reachout.delivery.status import MessageStatus
from reachout.messaging import reports as delivery
from reachout.messaging.models import Message
from tests.support.events import recorded
from tests.support.polyai import send
from tests.support.service import Service, messages

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def report(sid: str, status: MessageStatus, seconds: float, **extra: object) -> StatusReport:
    return StatusReport(sid=sid, status=status, occurred_at=T0 + timedelta(seconds=seconds), **extra)  # type: ignore[arg-type]


async def handed_off(service: Service) -> Message:
    assert await send(service) == 202
    await service.work()
    [message] = await messages(service)
    assert message.carrier_sid
    return message


async def apply(svc: Service, *reports: StatusReport) -> list[str | None]:
    async with svc.runtime.database.write.begin() as session:
        return [None if o is None else str(o) for o in await delivery.apply_statuses(session, reports)]


async def test_delivered_before_sent_ends_delivered(service: Service) -> None:
    sid = (await handed_off(service)).carrier_sid
    assert sid
    outcomes = await apply(
        service, report(sid, MessageStatus.DELIVERED, 5), report(sid, MessageStatus.SENT, 6)
    )
    assert outcomes == ["applied", "stale"]
    [message] = await messages(service)
    assert (message.status, message.delivered_at) == ("delivered", T0 + timedelta(seconds=5))


async def test_a_duplicate_changes_nothing_but_is_kept(service: Service) -> None:
    sid = (await handed_off(service)).carrier_sid
    assert sid
    assert await apply(service, report(sid, MessageStatus.SENT, 1)) == ["applied"]
    assert await apply(service, report(sid, MessageStatus.SENT, 2)) == ["duplicate"]
    [message] = await messages(service)
    assert message.updated_at == T0 + timedelta(seconds=1)
    kept = await recorded(
        service.runtime.database.read,
        message_id=message.id,
        types=["message.sent", "message.report_ignored"],
    )
    assert [(e.type, e.details.get("outcome")) for e in kept] == [
        ("message.sent", None),
        ("message.report_ignored", "duplicate"),
    ]


async def test_a_terminal_state_never_regresses(service: Service) -> None:
    sid = (await handed_off(service)).carrier_sid
    assert sid
    await apply(service, report(sid, MessageStatus.UNDELIVERED, 1, error_code=30003))
    assert await apply(
        service, report(sid, MessageStatus.DELIVERED, 2), report(sid, MessageStatus.SENT, 3)
    ) == [
        "stale",
        "stale",
    ]
    [message] = await messages(service)
    assert (message.status, message.error_code, message.delivered_at) == ("undelivered", 30003, None)


async def test_sent_and_delivered_in_one_batch_apply_in_order(service: Service) -> None:
    sid = (await handed_off(service)).carrier_sid
    assert sid
    outcomes = await apply(
        service, report(sid, MessageStatus.SENT, 1, num_segments=2), report(sid, MessageStatus.DELIVERED, 2)
    )
    assert outcomes == ["applied", "applied"]
    [message] = await messages(service)
    assert (message.status, message.num_segments) == ("delivered", 2), "the carrier's segment count wins"


async def test_an_unknown_sid_is_acknowledged_and_changes_nothing(service: Service) -> None:
    await handed_off(service)
    assert await apply(service, report("SM" + "0" * 32, MessageStatus.DELIVERED, 1)) == [None]
    [message] = await messages(service)
    assert message.status == "sending"
