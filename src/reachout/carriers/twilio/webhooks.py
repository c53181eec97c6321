"""Twilio's webhooks (status callbacks and inbound texts), checked with the library's RequestValidator.

Twilio signs the exact URL it was configured with, so the URL checked is reachout's public URL plus the path
and query, never the Host header a proxy may have rewritten. A bad or missing signature is a 403 and changes
nothing. Status callbacks go down the one status path every carrier shares (`CarrierEvents.statuses`):
unknown sids, duplicates and late regressions are acknowledged with 204 and dropped there. Inbound texts go
down the one inbound path (`CarrierEvents.inbound`), which drops a retried MessageSid; they are answered with
empty TwiML, because the agent's reply is sent later by the dispatcher, not in the webhook's answer.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from reachout.carriers.base import CarrierEvents, InboundText, StatusReport
from reachout.carriers.twilio.carrier import INBOUND_PATH, STATUS_CALLBACK_PATH
from reachout.db.engine import Database
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.kit.clock import Clock
from reachout.kit.docs import answer
from reachout.kit.http import BODY_TOO_LARGE, ErrorDetail
from reachout.logs import get_logger

log = get_logger("twilio")

SOURCE = "twilio"
# The library renders an empty response as `<Response />`; spelled with an end tag it is the same document to
# any XML parser, and what Twilio's "no reply" examples show.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(
    MessagingResponse().xml(), encoding="unicode", short_empty_elements=False
)
REQUIRED_INBOUND = "MessageSid, From and To are required."
# Twilio's message statuses that mean something to reachout; `accepted` and `scheduled` (a Messaging
# Service holding the message) say nothing the row does not already.
STATUSES: dict[str, MessageStatus] = {
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "read": MessageStatus.READ,
    "canceled": MessageStatus.CANCELED,
}


# What Twilio posts, as far as reachout reads it; Twilio sends more fields, which are signed and ignored.
SIGNATURE = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "Twilio's signature of the public URL and the form, made with the account's auth token.",
}
_TEXT = {"type": "string"}
EXAMPLE_SID = "SM3f1a9c0b7d2e4f6a8b0c1d2e3f4a5b6c"
STATUS_FORM = {
    "type": "object",
    "properties": {
        name: _TEXT
        for name in ("MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode", "NumSegments", "From")
    }
    | {"RawDlrDoneDate": _TEXT},
}
STATUS_EXAMPLE = {"MessageSid": EXAMPLE_SID, "MessageStatus": "delivered", "From": "+14155550100"}
INBOUND_FORM = {
    "type": "object",
    "required": ["MessageSid", "From", "To"],
    "properties": {name: _TEXT for name in ("MessageSid", "SmsSid", "From", "To", "Body")},
}
INBOUND_EXAMPLE = {
    "MessageSid": EXAMPLE_SID,
    "From": "+14155551234",
    "To": "+14155550100",
    "Body": "Can I move it to 3pm instead?",
}
UNREADABLE = "The body is not a form reachout can read (a multipart body without its boundary, say)."
UNREADABLE_EXAMPLE = {"detail": "Missing boundary in multipart."}
REFUSED = {"description": "The signature is missing or does not match. No body."}


def _form_operation(
    form: dict[str, Any], example: dict[str, str], parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    content = {"application/x-www-form-urlencoded": {"schema": form, "example": example}}
    return {"parameters": parameters, "requestBody": {"required": True, "content": content}}


STATUS_OPENAPI = _form_operation(
    STATUS_FORM,
    STATUS_EXAMPLE,
    [
        SIGNATURE,
        {
            "name": "reference",
            "in": "query",
            "schema": _TEXT,
            "description": "The message id reachout put in the callback URL when it sent the message.",
        },
    ],
)
STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "Applied, or acknowledged and dropped (an unknown sid, a duplicate, a regression)."},
    400: answer(UNREADABLE, ErrorDetail, UNREADABLE_EXAMPLE),
    403: REFUSED,
    413: BODY_TOO_LARGE,
}
INBOUND_OPENAPI = _form_operation(INBOUND_FORM, INBOUND_EXAMPLE, [SIGNATURE])
INBOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Taken in (or a retried MessageSid, dropped); the agent's reply is sent later, not in "
        "this answer.",
        "content": {"text/xml": {"schema": _TEXT, "example": EMPTY_TWIML}},
    },
    # The text when the form lacks or garbles a field; `{"detail"}` JSON when it is no form at all.
    400: {
        "description": f"Signed, but without a field reachout needs or with one it cannot take. {UNREADABLE}",
        "model": ErrorDetail,
        "content": {
            "text/plain": {"schema": _TEXT, "example": REQUIRED_INBOUND},
            "application/json": {"example": UNREADABLE_EXAMPLE},
        },
    },
    403: REFUSED,
    413: BODY_TOO_LARGE,
}


def twilio_router(
    database: Database, events: CarrierEvents, clock: Clock, *, auth_token: str, public_url: str
) -> APIRouter:
    """Routes Twilio posts to, bound to this process's database and the account's auth token."""
    router = APIRouter(tags=["Twilio webhooks"])
    validator = RequestValidator(auth_token)

    async def signed_form(request: Request) -> dict[str, str] | None:
        form = {key: str(value) for key, value in (await request.form()).items()}
        query = f"?{request.url.query}" if request.url.query else ""
        url = public_url.rstrip("/") + request.url.path + query
        signature = request.headers.get("x-twilio-signature", "")
        # RequestValidator compares in constant time.
        return form if signature and validator.validate(url, form, signature) else None

    @router.post(
        STATUS_CALLBACK_PATH,
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        openapi_extra=STATUS_OPENAPI,
        responses=STATUS_RESPONSES,
    )
    async def sms_status(request: Request) -> Response:
        """A status callback for a message reachout sent through Twilio."""
        form = await signed_form(request)
        if form is None:
            log.warning("Twilio status callback with a bad or missing signature refused")
            return Response(status_code=status.HTTP_403_FORBIDDEN)
        report = status_report(form, clock.now(), request.query_params.get("reference"))
        if report is not None:
            async with database.write.begin() as session:
                await events.statuses(session, [report])
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(
        INBOUND_PATH, response_class=Response, openapi_extra=INBOUND_OPENAPI, responses=INBOUND_RESPONSES
    )
    async def sms_inbound(request: Request) -> Response:
        """A text a person sent to one of the account's numbers, down the path every carrier's texts take."""
        form = await signed_form(request)
        if form is None:
            log.warning("Twilio inbound webhook with a bad or missing signature refused")
            return Response(status_code=status.HTTP_403_FORBIDDEN)
        try:
            text = inbound_text(form, clock.now())
        except UnusableWebhook as error:
            log.warning("Twilio inbound webhook refused", reason=str(error))
            return PlainTextResponse(str(error), status_code=status.HTTP_400_BAD_REQUEST)
        try:
            await take_in(text)
        except IntegrityError:
            # Twilio retried while the first delivery was being stored, and that one committed first: taken
            # again, the text is a duplicate the inbound path drops.
            await take_in(text)
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def take_in(text: InboundText) -> None:
        async with database.write.begin() as session:
            await events.inbound(session, text)

    return router


class UnusableWebhook(ValueError):
    """A signed webhook whose fields reachout cannot take: the message says which and why."""


# Twilio's sids are two letters and 32 hex digits; anything up to the column's 64 letters and digits is kept.
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
# A phone number, short code or sender id once its channel prefix is off: E.164 is at most 16 characters.
_ADDRESS = re.compile(r"\+?[A-Za-z0-9]{1,19}")
_CHANNEL_PREFIX = re.compile(r"([a-z][a-z0-9-]*):(.*)", re.DOTALL)
MAX_DETAIL_CHARS = 64
INT32_MAX = 2**31 - 1


def inbound_text(form: dict[str, str], now: datetime) -> InboundText:
    """The text an inbound webhook carries; `UnusableWebhook` when it lacks or garbles what identifies one."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid or form.get("From") is None or form.get("To") is None:
        raise UnusableWebhook(REQUIRED_INBOUND)
    sender_channel, from_number = _address(form["From"], "From")
    recipient_channel, to_number = _address(form["To"], "To")
    body = form.get("Body", "")
    if not _SID.fullmatch(sid):
        raise UnusableWebhook("MessageSid must be 2 to 64 letters and digits.")
    if "\x00" in body:
        raise UnusableWebhook("Body must not contain NUL (U+0000) characters.")
    return InboundText(
        sid=sid,
        channel=Channel.WHATSAPP if Channel.WHATSAPP in (sender_channel, recipient_channel) else Channel.SMS,
        from_number=from_number,
        to_number=to_number,
        body=body,
        received_at=now,
        carrier=SOURCE,
    )


def _address(raw: str, field: str) -> tuple[Channel, str]:
    """(channel, address) of a From or To: `+14155551234` is SMS, `whatsapp:+14155551234` WhatsApp."""
    channel, address = Channel.SMS, raw
    prefixed = _CHANNEL_PREFIX.fullmatch(raw)
    if prefixed is not None:
        prefix, address = prefixed.group(1), prefixed.group(2)
        if prefix != Channel.WHATSAPP:
            raise UnusableWebhook(
                f"{field}: the {prefix} channel is not one reachout serves (SMS, WhatsApp)."
            )
        channel = Channel.WHATSAPP
    if not _ADDRESS.fullmatch(address):
        raise UnusableWebhook(
            f"{field} must be a phone number, short code or sender id of at most 20 characters."
        )
    return channel, address


def status_report(form: dict[str, str], now: datetime, reference: str | None = None) -> StatusReport | None:
    """What a status callback says, or None when it says nothing reachout tracks.

    `reference` is the message id reachout put in the callback URL (signed with the rest of the URL).
    Nothing in it is trusted further than its shape: a sid, reference, number or count that could not be
    reachout's is left out (a report about no known message is acknowledged and dropped downstream).
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    state = STATUSES.get((form.get("MessageStatus") or form.get("SmsStatus") or "").lower())
    if not sid or not _SID.fullmatch(sid) or state is None:
        return None
    details: dict[str, Any] = {}
    done = form.get("RawDlrDoneDate") or ""
    if done.isprintable() and 0 < len(done) <= MAX_DETAIL_CHARS:
        details["raw_dlr_done_date"] = done
    return StatusReport(
        sid=sid,
        reference=_message_id(reference),
        status=state,
        occurred_at=now,
        error_code=_count(form.get("ErrorCode")),
        num_segments=_count(form.get("NumSegments")),
        from_number=_sender(form.get("From")),
        source=SOURCE,
        details=details,
    )


def _message_id(reference: str | None) -> str | None:
    """reachout's message id from the callback URL, if it is one (a UUID)."""
    try:
        return str(uuid.UUID(reference)) if reference else None
    except ValueError:
        return None


def _sender(raw: str | None) -> str | None:
    try:
        return _address(raw, "From")[1] if raw else None
    except UnusableWebhook:
        return None


def _count(value: str | None) -> int | None:
    """A non-negative whole number that fits the database's integers, else None."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if number <= INT32_MAX else None
