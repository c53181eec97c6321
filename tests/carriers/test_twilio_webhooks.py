"""Twilio's status callback webhook: signatures checked against the public URL, the shared status rules."""

from __future__ import annotations

from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from tests.support.events import recorded
from tests.support.service import Service
from tests.support.twilio_callbacks import AUTH_TOKEN, PATH, callback, handed_off, message


async def test_a_signed_callback_moves_the_message_and_records_what_twilio_said(hooked: Service) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    fields: dict[str, Any] = {"NumSegments": "2", "From": "+14155550199", "RawDlrDoneDate": "2611231210"}
    assert await callback(hooked, sent.carrier_sid, "delivered", **fields) == 204
    after = await message(hooked)
    assert (after.status, after.num_segments) == ("delivered", 2)
    assert after.delivered_at == hooked.clock.now()
    [event] = await recorded(hooked.runtime.database.read, source="twilio")
    assert event.details == {"raw_dlr_done_date": "2611231210"}


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
    kept = [event.type for event in await recorded(hooked.runtime.database.read, source="twilio")]
    assert len(kept) == 4  # every callback kept for audit
    assert kept[0] != "message.report_ignored" and set(kept[1:]) == {"message.report_ignored"}


async def test_a_failure_records_twilios_error_code(hooked: Service) -> None:
    sent = await handed_off(hooked)
    assert sent.carrier_sid is not None
    assert await callback(hooked, sent.carrier_sid, "undelivered", ErrorCode="30003") == 204
    final = await message(hooked)
    assert (final.status, final.error_code) == ("undelivered", 30003)
