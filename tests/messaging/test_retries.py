"""A send the carrier could not take is retried by the retry strategy, and a carrier's Retry-After is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy import select

from reachout.carriers.base import Accepted, CarrierUnavailable, OutboundText, Rejected, SendResult
from reachout.carriers.plugin import CarrierContext, CarrierPlugin
from reachout.carriers.registry import FACTORIES, CarrierRegistry
from reachout.delivery.failures import TOO_MANY_REQUESTS
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from tests.support.carriers import move_number
from tests.support.events import recorded
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER, standard_document
from tests.support.service import in_process, make_settings


@dataclass
class BusyCarrier:
    """Refuses every send, saying when to come back: unavailable, or 429 Too Many Requests."""

    answer: Exception | SendResult
    sends: list[OutboundText] = field(default_factory=list)

    async def send(self, text: OutboundText) -> SendResult:
        self.sends.append(text)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        return ()


@pytest.mark.parametrize(
    "answer",
    [CarrierUnavailable("busy", retry_after=120.0), Rejected(TOO_MANY_REQUESTS, retry_after=120.0)],
    ids=["unavailable", "too-many-requests"],
)
async def test_a_carriers_retry_after_is_waited_for(
    database_url: str, clock: FakeClock, answer: Exception | SendResult
) -> None:
    busy = BusyCarrier(answer)

    def build(_context: CarrierContext) -> CarrierPlugin | None:
        return CarrierRegistry.of_texts({"busy": busy}).plugin("busy")

    carriers = {**FACTORIES, "busy": build}
    settings = make_settings(database_url, retry_base_seconds=2.0, retry_jitter=0.0)
    async with in_process(settings, clock, standard_document(), carriers) as service:
        await move_number(service, SENDER, "busy")
        payload = {"message": "Hello", "user_number": USER, "agent_number": SENDER}
        response = await service.client.post("/v1/outbound-sms", json=payload, headers=POLYAI_HEADERS)
        assert response.status_code == 202, response.text
        await service.work()
        assert len(busy.sends) == 1
        async with service.runtime.database.read() as session:
            message = (await session.execute(select(Message))).scalar_one()
            waited = (message.next_attempt_at - clock.now()).total_seconds()  # type: ignore[operator]
        [retry] = await recorded(service.runtime.database.read, types=["message.retry_scheduled"])
        assert message.status == "queued" and waited == pytest.approx(120.0)
        assert retry.details["error_code"] == (20503 if isinstance(answer, Exception) else 20429)

        clock.advance(60)  # the backoff alone (2 s) has long passed, the carrier's word has not
        await service.work()
        assert len(busy.sends) == 1
        clock.advance(61)
        await service.work()
        assert len(busy.sends) == 2
