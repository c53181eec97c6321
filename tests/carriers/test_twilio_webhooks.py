"""Twilio's status callback webhook: signatures checked against the public URL, the shared status rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from reachout.app import create_app
from reachout.carriers.twilio.webhooks import twilio_router
from reachout.conversations.carrier_events import ConversationCarrierEvents
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message, MessageStatusEvent
from tests.conftest import Service, make_settings
from tests.dialects.test_polyai import EXAMPLE, HEADERS
from tests.support.provisioning import standard_document

AUTH_TOKEN = "webhook_test_auth_token_0123456"
PUBLIC_URL = "https://reachout.example.test"  # what Twilio was told; requests arrive at another host
PATH = "/v1/webhook/twilio/sms-status"


@pytest.fixture
async def hooked(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    runtime = app.state.runtime
    events = ConversationCarrierEvents(debounce_seconds=2.0)
    app.include_router(
        twilio_router(runtime.database, events, clock, auth_token=AUTH_TOKEN, public_url=PUBLIC_URL)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://internal:8080") as client:
            service = Service(runtime=runtime, client=client, clock=clock)
            await service.provision(standard_document())
            yield service


async def handed_off(service: Service) -> Message:
    """A greeting the dispatcher has handed to the carrier (whose own reports have not come yet)."""
    assert (await service.client.post("/v1/outbound-sms", json=EXAMPLE, headers=HEADERS)).status_code == 202
    await service.work()
    return await message(service)


async def message(service: Service) -> Message:
    async with service.runtime.database.read() as session:
        return (await session.execute(select(Message))).scalar_one()


async def callback(
    service: Service, sid: str, status: str, *, signature: str | None = None, **extra: str
) -> int:
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status, **extra}
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + PATH, form)
    response = await service.client.post(PATH, data=form, headers={"X-Twilio-Signature": signature})
    return response.status_code


async def test_a_signed_callback_moves_the_message_and_records_what_twilio_said(hooked: Service) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    fields: dict[str, Any] = {"NumSegments": "2", "From": "+14155550199", "RawDlrDoneDate": "2611231210"}
    assert await callback(hooked, sent.carrier_sid, "delivered", **fields) == 204
    after = await message(hooked)
    assert (after.status, after.num_segments) == ("delivered", 2)
    assert after.delivered_at == hooked.clock.now()
    async with hooked.runtime.database.read() as session:
        details = (
            await session.execute(
                select(MessageStatusEvent.details).where(MessageStatusEvent.source == "twilio")
            )
        ).scalar_one()
    assert details == {"raw_dlr_done_date": "2611231210"}


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
async def test_a_bad_or_missing_signature_is_403_and_changes_nothing(hooked: Service, signature: str) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    assert await callback(hooked, sent.carrier_sid, "delivered", signature=signature) == 403
    assert (await message(hooked)).status == sent.status


async def test_a_signature_over_the_host_header_instead_of_the_public_url_is_refused(hooked: Service) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    form = {"MessageSid": sent.carrier_sid, "MessageStatus": "delivered"}
    forged = RequestValidator(AUTH_TOKEN).compute_signature("http://internal:8080" + PATH, form)
    assert await callback(hooked, sent.carrier_sid, "delivered", signature=forged) == 403


async def test_an_unknown_sid_is_acknowledged(hooked: Service) -> None:
    assert await callback(hooked, "SM" + "f" * 32, "delivered") == 204


async def test_out_of_order_duplicate_and_late_callbacks_leave_the_right_status(hooked: Service) -> None:
    sent = await handed_off(hooked)
    sid = sent.carrier_sid
    assert sid is not None
    for status in ("delivered", "sent", "delivered", "failed"):  # overtaken, duplicated, then regressing
        assert await callback(hooked, sid, status) == 204
    final = await message(hooked)
    assert (final.status, final.errored_at) == ("delivered", None)
    async with hooked.runtime.database.read() as session:
        outcomes = (
            await session.execute(
                select(MessageStatusEvent.status, MessageStatusEvent.outcome)
                .where(MessageStatusEvent.source == "twilio")
                .order_by(MessageStatusEvent.id)
            )
        ).all()
    assert len(outcomes) == 4  # every callback kept for audit
    assert outcomes[0][1] == "applied" and all(o != "applied" for _, o in outcomes[1:])


async def test_a_failure_records_twilios_error_code(hooked: Service) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    assert await callback(hooked, sent.carrier_sid, "undelivered", ErrorCode="30003") == 204
    final = await message(hooked)
    assert (final.status, final.error_code) == ("undelivered", 30003)
