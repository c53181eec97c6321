"""The pipeline behind a send: accept, dispatch, hand-off, sent, delivered — and the ways a send fails."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.conversations.models import Conversation
from tests.support.events import recorded
from tests.support.polyai import send
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER, standard_document
from tests.support.service import Service, messages


async def events(service: Service, message_id: str) -> list[tuple[str, str | None]]:
    return [(e.type, e.source) for e in await recorded(service.runtime.database.read, message_id=message_id)]


class TestDelivery:
    async def test_greeting_moves_through_every_status_to_delivered(self, service: Service) -> None:
        assert await send(service, agent_number=SENDER) == 202
        [message] = await messages(service)
        assert (message.status, message.carrier_sid, message.handed_off_at) == ("queued", None, None)

        await service.work()
        [message] = await messages(service)
        assert message.status == "sending"
        assert message.carrier_sid is not None and message.carrier_sid.startswith("SM")
        assert len(message.carrier_sid) == 34
        assert message.handed_off_at == service.clock.now()

        service.clock.advance(1)
        await service.work()
        assert (await messages(service))[0].status == "sent"

        service.clock.advance(2)
        await service.work()
        [message] = await messages(service)
        assert message.status == "delivered"
        assert message.delivered_at == service.clock.now()
        assert message.num_segments == 1 and message.encoding == "GSM-7"
        assert message.errored_at is None and message.error_code is None
        assert await events(service, message.id) == [
            ("message.queued", None),
            ("message.sending", "dispatcher"),
            ("message.sent", "sandbox"),
            ("message.delivered", "sandbox"),
        ]

    async def test_handset_sees_the_greeting_once(self, service: Service) -> None:
        assert await send(service) == 202
        await service.settle()
        response = await service.client.get(f"/sandbox/handsets/{USER}/messages")
        assert response.status_code == 200
        [received] = response.json()
        assert received["direction"] == "to_handset"
        assert received["to"] == USER and received["body"] == "Hi Jane, see you tomorrow at 2pm."

    async def test_long_unicode_body_counts_ucs2_segments(self, service: Service) -> None:
        assert await send(service, message="Привет " * 20) == 202
        [message] = await messages(service)
        assert (message.encoding, message.num_segments) == ("UCS-2", 3)


class TestCarrierRefusals:
    async def test_magic_unroutable_number_fails_at_the_hand_off_with_21612(self, service: Service) -> None:
        assert await send(service, user_number="+15005550002") == 202
        await service.work()
        [message] = await messages(service)
        assert (message.status, message.error_code, message.carrier_sid) == ("failed", 21612, None)
        assert message.errored_at == service.clock.now()

    @pytest.mark.parametrize("landline", ["+442071838750", "+12125550042", "+15005550009"])
    async def test_a_landline_is_refused_before_anything_is_written(
        self, service: Service, landline: str
    ) -> None:
        """libphonenumber types a London number as a fixed line; the sandbox's lookup, +1 NPA 555 00xx and
        Twilio's magic not-SMS-capable number."""
        response = await service.client.post(
            "/v1/outbound-sms",
            json={"message": "Hi", "user_number": landline},
            headers=POLYAI_HEADERS,
        )
        assert response.status_code == 400
        assert response.json() == {
            "detail": f"user_number: {landline} is a landline, which cannot receive text messages."
        }
        assert await messages(service) == []

    async def test_twilios_magic_invalid_number_is_refused_before_anything_is_written(
        self, service: Service
    ) -> None:
        response = await service.client.post(
            "/v1/outbound-sms", json={"message": "Hi", "user_number": "+15005550001"}, headers=POLYAI_HEADERS
        )
        assert response.status_code == 400
        assert "+15005550001 is not a real phone number" in response.json()["detail"]
        assert await messages(service) == []


class TestSessions:
    async def test_a_new_greeting_supersedes_the_open_conversation(self, service: Service) -> None:
        assert await send(service) == 202
        assert await send(service) == 202
        async with service.runtime.database.read() as session:
            rows = (
                (await session.execute(select(Conversation).order_by(Conversation.opened_at))).scalars().all()
            )
        statuses = sorted(c.status for c in rows)
        assert statuses == ["ended", "open"]

    async def test_the_same_user_keeps_the_same_sender(self, service: Service) -> None:
        for _ in range(3):
            assert await send(service) == 202
        senders = {m.from_number for m in await messages(service)}
        assert len(senders) == 1

    async def test_sender_is_chosen_from_the_connector_environment(self, service: Service) -> None:
        for n in range(12):
            assert await send(service, user_number=f"+1415555{1200 + n}") == 202
        senders = {m.from_number for m in await messages(service)}
        assert senders == {"+14155550100", "+14155550101"}


async def test_dispatch_is_exactly_once_at_the_carrier(service: Service) -> None:
    for n in range(25):
        assert await send(service, user_number=f"+1415555{1300 + n}") == 202
    await service.settle()
    async with service.runtime.database.read() as session:
        sandbox_rows = (await session.execute(select(func.count()).select_from(SandboxMessage))).scalar_one()
    assert sandbox_rows == 25
    assert {m.status for m in await messages(service)} == {"delivered"}


async def test_a_user_moves_to_another_sender_only_when_theirs_is_unprovisioned(service: Service) -> None:
    assert await send(service) == 202
    [first] = await messages(service)
    document = standard_document()
    numbers = document["accounts"][0]["projects"][0]["numbers"]
    document["accounts"][0]["projects"][0]["numbers"] = [
        n for n in numbers if n["number"] != first.from_number
    ]
    await service.provision(document)
    assert await send(service) == 202
    second = (await messages(service))[-1]
    assert second.from_number not in (None, first.from_number)
    await service.provision(standard_document())
    assert await send(service) == 202
    assert (await messages(service))[-1].from_number == second.from_number, "the new sender sticks"
