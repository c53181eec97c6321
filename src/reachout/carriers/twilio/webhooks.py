"""Twilio's webhooks (status callbacks and inbound texts), checked with the library's RequestValidator.

Twilio signs the exact URL it was configured with, so the URL checked is reachout's public URL plus the path
and query, never the Host header a proxy may have rewritten. A bad or missing signature is a 403 and changes
nothing. Status callbacks go down the one status path every carrier shares (`CarrierEvents.statuses`):
unknown sids, duplicates and late regressions are acknowledged with 204 and dropped there. Inbound texts go
down the one inbound path (`CarrierEvents.inbound`), which drops a retried MessageSid; they are answered with
empty TwiML, because the agent's reply is sent later by the dispatcher, not in the webhook's answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from reachout.carriers.base import CarrierEvents, InboundText, StatusReport
from reachout.carriers.twilio.carrier import INBOUND_PATH, STATUS_CALLBACK_PATH, WHATSAPP
from reachout.db.engine import Database
from reachout.kit.clock import Clock
from reachout.logs import get_logger
from reachout.messaging.status import MessageStatus

log = get_logger("twilio")

SOURCE = "twilio"
SMS = "sms"
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

    @router.post(STATUS_CALLBACK_PATH, status_code=status.HTTP_204_NO_CONTENT)
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

    @router.post(INBOUND_PATH)
    async def sms_inbound(request: Request) -> Response:
        """A text a person sent to one of the account's numbers, down the path every carrier's texts take."""
        form = await signed_form(request)
        if form is None:
            log.warning("Twilio inbound webhook with a bad or missing signature refused")
            return Response(status_code=status.HTTP_403_FORBIDDEN)
        text = inbound_text(form, clock.now())
        if text is None:
            log.warning("Twilio inbound webhook without MessageSid, From or To refused")
            return PlainTextResponse(REQUIRED_INBOUND, status_code=status.HTTP_400_BAD_REQUEST)
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


def inbound_text(form: dict[str, str], now: datetime) -> InboundText | None:
    """The text an inbound webhook carries, or None when it lacks what identifies one."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    sender, recipient = form.get("From", ""), form.get("To", "")
    prefix = f"{WHATSAPP}:"
    channel = WHATSAPP if sender.startswith(prefix) or recipient.startswith(prefix) else SMS
    from_number, to_number = sender.removeprefix(prefix), recipient.removeprefix(prefix)
    if not sid or not from_number or not to_number:
        return None
    return InboundText(
        sid=sid,
        channel=channel,
        from_number=from_number,
        to_number=to_number,
        body=form.get("Body", ""),
        received_at=now,
        carrier=SOURCE,
    )


def status_report(form: dict[str, str], now: datetime, reference: str | None = None) -> StatusReport | None:
    """What a status callback says, or None when it says nothing reachout tracks.

    `reference` is the message id reachout put in the callback URL (signed with the rest of the URL).
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    state = STATUSES.get((form.get("MessageStatus") or form.get("SmsStatus") or "").lower())
    if not sid or state is None:
        return None
    details: dict[str, Any] = {}
    if form.get("RawDlrDoneDate"):
        details["raw_dlr_done_date"] = form["RawDlrDoneDate"]
    return StatusReport(
        sid=sid,
        reference=reference or None,
        status=state,
        occurred_at=now,
        error_code=_integer(form.get("ErrorCode")),
        num_segments=_integer(form.get("NumSegments")),
        from_number=(form.get("From") or "").removeprefix("whatsapp:") or None,
        source=SOURCE,
        details=details,
    )


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
