"""Twilio's inbound webhook on a real socket: the emulator texts a Twilio number, the agent's reply goes back
through the twilio library to the emulator, and forged, incomplete or repeated webhooks change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from reachout.app import Runtime, create_app
from reachout.carriers.base import InboundText, StatusReport
from reachout.carriers.twilio.carrier import INBOUND_PATH
from reachout.carriers.twilio.webhooks import twilio_router
from reachout.conversations.carrier_events import ConversationCarrierEvents
from reachout.db.engine import Database
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support.chat import DEBOUNCE, project_document
from tests.support.provisioning import SENDER, USER
from tests.support.service import make_settings
from tests.support.twilio_chat import SID, TwilioChat
from tests.support.twilio_emulator import AUTH_TOKEN

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def test_a_text_to_a_twilio_number_is_answered_by_the_agent_through_twilio(
    twilio_chat: TwilioChat,
) -> None:
    received_at = twilio_chat.clock.now()
    response = await twilio_chat.emulator.text_in(USER, SENDER, "Can I move it to 3pm?", sid=SID)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/xml"
    assert response.text == EMPTY_TWIML  # the reply is not in the TwiML: the dispatcher sends it
    assert twilio_chat.emulator.creates() == []
    [stored] = await twilio_chat.inbound()
    assert (stored.carrier, stored.carrier_sid, stored.channel, stored.status) == (
        "twilio",
        SID,
        "sms",
        "received",
    )
    assert (stored.from_number, stored.to_number, stored.body) == (USER, SENDER, "Can I move it to 3pm?")
    assert stored.created_at == received_at and stored.conversation_id is not None

    await twilio_chat.turn()
    assert twilio_chat.agent.heard == ["Can I move it to 3pm?"]
    [form] = twilio_chat.emulator.creates()
    assert (form["To"], form["From"], form["Body"]) == (USER, SENDER, "you said: Can I move it to 3pm?")
    [reply_sid] = [sid for sid, m in twilio_chat.emulator.messages.items() if m.direction == "outbound-api"]
    async with twilio_chat.runtime.database.read() as session:
        reply = (await session.execute(select(Message).where(Message.carrier_sid == reply_sid))).scalar_one()
    assert (reply.conversation_id, reply.status, reply.carrier) == (
        stored.conversation_id,
        "sending",
        "twilio",
    )


async def test_a_repeated_message_sid_is_stored_once_and_answered_once(twilio_chat: TwilioChat) -> None:
    for _ in range(3):  # Twilio retries a webhook it did not see answered
        response = await twilio_chat.emulator.text_in(USER, SENDER, "hello", sid=SID)
        assert (response.status_code, response.text) == (200, EMPTY_TWIML)
    assert [m.carrier_sid for m in await twilio_chat.inbound()] == [SID]
    await twilio_chat.turn()
    await twilio_chat.turn()
    assert twilio_chat.agent.heard == ["hello"]
    assert [form["Body"] for form in twilio_chat.emulator.creates()] == ["you said: hello"]


async def test_a_whatsapp_text_is_on_the_whatsapp_channel_and_answered_there(twilio_chat: TwilioChat) -> None:
    response = await twilio_chat.emulator.text_in(USER, SENDER, "hola", sid=SID, whatsapp=True)
    assert response.status_code == 200
    [stored] = await twilio_chat.inbound()
    assert (stored.channel, stored.from_number, stored.to_number) == ("whatsapp", USER, SENDER)
    await twilio_chat.turn()
    [form] = twilio_chat.emulator.creates()
    assert (form["To"], form["From"], form["Body"]) == (
        f"whatsapp:{USER}",
        f"whatsapp:{SENDER}",
        "you said: hola",
    )


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="missing"),
        pytest.param("bm90IGEgc2lnbmF0dXJl", id="garbage"),
        pytest.param("another token", id="signed-with-another-token"),
    ],
)
async def test_a_forged_inbound_webhook_is_403_and_changes_nothing(
    twilio_chat: TwilioChat, signature: str
) -> None:
    if signature == "another token":
        # What an attacker who knows the URL and the parameters, but not the auth token, can compute.
        url, form = twilio_chat.emulator.inbound_url, {"MessageSid": SID, "From": USER, "To": SENDER}
        assert url is not None
        signature = RequestValidator("not_the_auth_token").compute_signature(url, form)
        async with httpx.AsyncClient() as client:
            response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    else:
        response = await twilio_chat.emulator.text_in(USER, SENDER, "hello", sid=SID, signature=signature)
    assert response.status_code == 403
    await twilio_chat.turn()
    assert await twilio_chat.inbound() == [] and await twilio_chat.conversations() == 0
    assert twilio_chat.agent.heard == [] and twilio_chat.emulator.creates() == []


@pytest.mark.parametrize(
    "missing",
    [("MessageSid", "SmsSid", "SmsMessageSid"), ("From",), ("To",)],
    ids=["sid", "from", "to"],
)
async def test_a_signed_webhook_without_sid_from_or_to_is_400_and_changes_nothing(
    twilio_chat: TwilioChat, missing: Sequence[str]
) -> None:
    response = await twilio_chat.emulator.text_in(USER, SENDER, "hello", sid=SID, without=tuple(missing))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "MessageSid, From and To are required."
    assert await twilio_chat.inbound() == [] and await twilio_chat.conversations() == 0


async def test_a_text_to_a_number_no_project_owns_is_kept_and_acknowledged(twilio_chat: TwilioChat) -> None:
    response = await twilio_chat.emulator.text_in(USER, "+14155550177", "anyone there?", sid=SID)
    assert (response.status_code, response.text) == (200, EMPTY_TWIML)
    [stored] = await twilio_chat.inbound()
    assert (stored.project_id, stored.carrier_sid) == (None, SID)


class LosesTheRace:
    """Inbound events where a concurrent delivery of the same text commits first, so this insert fails."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._real = ConversationCarrierEvents(debounce_seconds=DEBOUNCE)
        self.calls = 0

    async def statuses(self, session: Any, reports: Sequence[StatusReport]) -> None:
        await self._real.statuses(session, reports)

    async def inbound(self, session: Any, text: InboundText) -> None:
        self.calls += 1
        if self.calls == 1:
            async with self._database.write.begin() as rival:  # the other delivery, committed first
                await self._real.inbound(rival, text)
            # What the database answers the loser's insert: the carrier sid is unique.
            raise IntegrityError("INSERT INTO messages", None, Exception("duplicate carrier_sid"))
        await self._real.inbound(session, text)


async def test_a_retry_that_loses_the_race_to_its_twin_is_answered_200_not_500(
    database_url: str, clock: FakeClock
) -> None:
    public_url = "https://reachout.example.test"
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    runtime: Runtime = app.state.runtime
    events = LosesTheRace(runtime.database)
    app.include_router(
        twilio_router(runtime.database, events, clock, auth_token=AUTH_TOKEN, public_url=public_url)
    )
    form = {"MessageSid": SID, "From": USER, "To": SENDER, "Body": "hello"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(public_url + INBOUND_PATH, form)
    async with app.router.lifespan_context(app):
        async with runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(project_document(), "test"), clock.now())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://internal:8080") as client:
            response = await client.post(INBOUND_PATH, data=form, headers={"X-Twilio-Signature": signature})
        assert (response.status_code, response.text) == (200, EMPTY_TWIML)
        assert events.calls == 2
        async with runtime.database.read() as session:
            sids = (await session.execute(select(Message.carrier_sid))).scalars().all()
        assert sids == [SID]
