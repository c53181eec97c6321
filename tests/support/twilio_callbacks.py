"""Fixture `hooked` (a plugin): reachout in this process with Twilio's status callback webhook mounted, and
helpers to hand a message off and report on it as Twilio would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from reachout.app import create_app
from reachout.carriers.twilio.webhooks import twilio_router
from reachout.conversations.carrier_events import ConversationCarrierEvents
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from tests.support import polyai
from tests.support.provisioning import POLYAI_HEADERS, standard_document
from tests.support.service import Service, make_settings

AUTH_TOKEN = "webhook_test_auth_token_0123456"
PUBLIC_URL = "https://reachout.example.test"  # what Twilio was told; requests arrive at another host
PATH = "/v1/webhook/twilio/sms-status"


@pytest.fixture
async def hooked(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    """reachout in this process with Twilio's webhooks mounted, signed with AUTH_TOKEN for PUBLIC_URL."""
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
    response = await service.client.post(polyai.PATH, json=polyai.EXAMPLE, headers=POLYAI_HEADERS)
    assert response.status_code == 202, response.text
    await service.work()
    return await message(service)


async def message(service: Service) -> Message:
    """The one message stored."""
    async with service.runtime.database.read() as session:
        return (await session.execute(select(Message))).scalar_one()


async def callback(
    service: Service, sid: str, status: str, *, signature: str | None = None, **extra: str
) -> int:
    """Post a status callback for `sid`, signed as Twilio signs it unless `signature` is given; the status."""
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status, **extra}
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + PATH, form)
    response = await service.client.post(PATH, data=form, headers={"X-Twilio-Signature": signature})
    return response.status_code
