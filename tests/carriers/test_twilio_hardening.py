"""Signed Twilio webhooks whose fields reachout cannot store are refused with a 400, never a 500; a signed
flood of HELP is answered once."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from reachout.tenancy.settings import HELP_TEXT
from tests.support.events import recorded
from tests.support.provisioning import SENDER, USER
from tests.support.service import Service
from tests.support.twilio_callbacks import AUTH_TOKEN, PATH, PUBLIC_URL, callback, handed_off, message
from tests.support.twilio_chat import SID, TwilioChat

UNUSABLE_INBOUND = {
    # (From, To, Body, MessageSid) and a word the refusal must contain
    "from-longer-than-a-number": ("+1" + "4" * 25, SENDER, "hello", SID, "From"),
    "from-a-messenger-address": ("messenger:" + "1" * 24, SENDER, "hello", SID, "messenger"),
    "to-a-messenger-address": (USER, "messenger:" + "2" * 24, "hello", SID, "messenger"),
    "from-with-a-nul": ("+1415555\x001234", SENDER, "hello", SID, "From"),
    "to-with-a-nul": (USER, "+1415555\x000100", "hello", SID, "To"),
    "body-with-a-nul": (USER, SENDER, "hel\x00lo", SID, "NUL"),
    "sid-longer-than-64": (USER, SENDER, "hello", "SM" + "a" * 70, "MessageSid"),
    "sid-with-a-nul": (USER, SENDER, "hello", "SM\x00" + "a" * 31, "MessageSid"),
    "sid-with-punctuation": (USER, SENDER, "hello", "SM'; DROP TABLE messages; --", "MessageSid"),
}


@pytest.mark.parametrize(
    ("from_", "to", "body", "sid", "named"), UNUSABLE_INBOUND.values(), ids=UNUSABLE_INBOUND.keys()
)
async def test_a_signed_inbound_webhook_reachout_cannot_store_is_400_and_changes_nothing(
    twilio_chat: TwilioChat,
    from_: str,
    to: str,
    body: str,
    sid: str,
    named: str,
) -> None:
    response = await twilio_chat.emulator.text_in(from_, to, body, sid=sid, SmsSid=sid, SmsMessageSid=sid)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert named in response.text
    assert await twilio_chat.inbound() == [] and await twilio_chat.conversations() == 0


async def test_a_whatsapp_address_of_a_full_length_number_is_taken(twilio_chat: TwilioChat) -> None:
    longest = "+" + "8" * 3 + "6" * 12  # 15 digits, the most E.164 allows
    response = await twilio_chat.emulator.text_in(longest, SENDER, "hola", sid=SID, whatsapp=True)
    assert response.status_code == 200
    [stored] = await twilio_chat.inbound()
    assert (stored.channel, stored.from_number) == ("whatsapp", longest)


async def test_a_signed_flood_of_twenty_help_texts_is_answered_once(twilio_chat: TwilioChat) -> None:
    for _ in range(20):
        response = await twilio_chat.emulator.text_in(USER, SENDER, "HELP")
        assert response.status_code == 200
    await twilio_chat.settle()
    assert len(await twilio_chat.inbound()) == 20
    assert [form["Body"] for form in twilio_chat.emulator.creates()] == [HELP_TEXT]


UNUSABLE_STATUS = {
    "error-code-past-int32": {"ErrorCode": "9" * 12},
    "error-code-negative": {"ErrorCode": "-30003"},
    "segments-past-int32": {"NumSegments": "99999999999999999999"},
    "from-with-a-nul": {"From": "+1415\x00"},
    "from-too-long": {"From": "+1" + "5" * 60},
    "raw-dlr-with-a-nul": {"RawDlrDoneDate": "2611\x00231210"},
    "raw-dlr-too-long": {"RawDlrDoneDate": "2" * 500},
}


@pytest.mark.parametrize("fields", UNUSABLE_STATUS.values(), ids=UNUSABLE_STATUS.keys())
async def test_a_status_callback_with_fields_that_cannot_be_stored_keeps_only_what_can(
    hooked: Service,
    fields: dict[str, str],
) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    assert await callback(hooked, sent.carrier_sid, "undelivered", **fields) == 204
    after = await message(hooked)
    assert after.status == "undelivered"
    assert after.error_code is None and after.num_segments == sent.num_segments
    assert after.from_number == sent.from_number
    [event] = await recorded(hooked.runtime.database.read, source="twilio")
    assert event.details == {}


@pytest.mark.parametrize(
    "sid", ["SM\x00" + "a" * 31, "SM" + "b" * 80, "not a sid at all"], ids=["nul", "too-long", "spaces"]
)
async def test_a_status_callback_for_a_sid_that_cannot_be_one_is_acknowledged_and_dropped(
    hooked: Service,
    sid: str,
) -> None:
    sent = await handed_off(hooked)
    assert await callback(hooked, sid, "delivered") == 204
    assert (await message(hooked)).status == sent.status


@pytest.mark.parametrize("reference", ["%00", "x" * 300, "1%3B%20DROP%20TABLE%20messages"])
async def test_a_callback_url_reference_that_is_not_a_message_id_is_ignored(
    hooked: Service,
    reference: str,
) -> None:
    sent = await handed_off(hooked)
    form = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered"}
    url = f"{PATH}?reference={reference}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + url, form)
    response = await hooked.client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204, response.text
    assert (await message(hooked)).status == sent.status
