"""The Twilio carrier: sends through the official `twilio` library's asynchronous client.

Twilio's answers map onto the port: a created message is `Accepted` with its sid; a refusal with a Twilio
error code is `Rejected` with that code's catalogue entry (which says whether a retry can help: 20429 and
5xx can, 21211 cannot); a request that timed out or lost its connection is `CarrierUnavailable`, because
Twilio may have accepted it, so it must never be retried blindly.

A text with a `messaging_service_sid` is sent through that Messaging Service and from the sender reachout
chose, which must be in the service's pool (Twilio takes a MessagingServiceSid "instead of or in addition
to" a From): the service's features apply, and the person's reply reaches the number their conversation is
keyed by. A text with a `content_sid` is sent as that content template with its variables instead of a body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException

from reachout.carriers.base import (
    Accepted,
    CarrierKind,
    CarrierUnavailable,
    OutboundText,
    Rejected,
    SendResult,
)
from reachout.carriers.twilio.client import LazyTwilioClient
from reachout.delivery.channels import Channel
from reachout.delivery.failures import TOO_MANY_REQUESTS, CarrierFailure, failure_for

STATUS_CALLBACK_PATH = "/v1/webhook/twilio/sms-status"
INBOUND_PATH = "/v1/webhook/twilio/sms-inbound"
FIND_SLACK = timedelta(minutes=1)
FIND_LIMIT = 50
API_CREATED = "outbound-api"  # the direction of every message created through the Messages API


@dataclass(frozen=True)
class TwilioSettings:
    """How to reach Twilio; `api_base_url` replaces https://api.twilio.com (an edge, or a test double)."""

    account_sid: str
    auth_token: str
    public_url: str  # reachout's own base URL, where Twilio posts status callbacks
    api_base_url: str | None = None
    timeout_seconds: float = 10.0

    def __repr__(self) -> str:  # the auth token never reaches a log line
        return f"TwilioSettings(account_sid={self.account_sid!r}, public_url={self.public_url!r})"


class TwilioCarrier:
    """Twilio's Messages API behind the carrier port.

    Twilio keeps no idempotency key: a repeated reference is kept from becoming a second send by `find`, which
    the dispatcher calls before any re-send.
    """

    kind = CarrierKind.TWILIO

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings
        self._client = LazyTwilioClient(
            settings.account_sid, settings.auth_token, api_base_url=settings.api_base_url
        )

    @property
    def settings(self) -> TwilioSettings:
        return self._settings

    @property
    def status_callback_url(self) -> str:
        return self._settings.public_url.rstrip("/") + STATUS_CALLBACK_PATH

    async def send(self, text: OutboundText) -> SendResult:
        """Create the message at Twilio; see the module docstring for what each outcome means."""
        try:
            # The library's async client does not apply its own timeout to requests, so the deadline is ours.
            message = await asyncio.wait_for(
                self._client.get().messages.create_async(
                    to=_address(text.channel, text.to_number),
                    # The callback names reachout's message, so a report that overtakes the dispatcher's
                    # record of Twilio's sid still finds its message (and records the sid).
                    status_callback=f"{self.status_callback_url}?{urlencode({'reference': text.reference})}",
                    **_sender(text),
                    **_content(text),
                ),
                self._settings.timeout_seconds,
            )
        except TwilioRestException as error:
            if error.status >= 500:  # Twilio may or may not have created it
                raise CarrierUnavailable(f"Twilio answered HTTP {error.status}") from None
            return Rejected(_failure(error))
        except (TimeoutError, aiohttp.ClientError) as error:
            raise CarrierUnavailable(f"Twilio did not answer: {type(error).__name__}") from None
        return Accepted(str(message.sid))

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        """Messages Twilio created for this recipient from this sender (and service) since `since`.

        Those with this body, oldest first, or for a content template (whose rendering we cannot know) the
        earliest after `since`, then the latest before it.
        """
        # Twilio's clock and ours may disagree a little: look a minute further back.
        window = since - FIND_SLACK
        try:
            messages = await asyncio.wait_for(
                self._client.get().messages.list_async(
                    to=_address(text.channel, text.to_number),
                    from_=_address(text.channel, text.from_number),
                    date_sent_after=window,
                    limit=FIND_LIMIT,
                ),
                self._settings.timeout_seconds,
            )
        except TwilioRestException as error:
            raise CarrierUnavailable(f"Twilio could not list messages: HTTP {error.status}") from None
        except (TimeoutError, aiohttp.ClientError) as error:
            raise CarrierUnavailable(f"Twilio did not answer: {type(error).__name__}") from None
        return tuple(Accepted(str(m.sid)) for m in _matches(text, messages, since, window))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()


def _address(channel: Channel, number: str) -> str:
    """Twilio's address for a number on a channel: `whatsapp:+1...` or the bare number for SMS."""
    return f"{Channel.WHATSAPP}:{number}" if channel is Channel.WHATSAPP else number


def _sender(text: OutboundText) -> dict[str, str]:
    """From, and the Messaging Service whose features apply, if the project has one."""
    sender = {"from_": _address(text.channel, text.from_number)}
    if text.messaging_service_sid is not None:
        sender["messaging_service_sid"] = text.messaging_service_sid
    return sender


def _content(text: OutboundText) -> dict[str, str]:
    """The body, or a content template and its variables as the JSON string Twilio expects."""
    if text.content_sid is None:
        return {"body": text.body}
    content = {"content_sid": text.content_sid}
    if text.content_variables is not None:
        content["content_variables"] = json.dumps(text.content_variables)
    return content


def _matches(text: OutboundText, messages: Sequence[Any], since: datetime, window: datetime) -> list[Any]:
    """Which of the listed messages may be this text's earlier send, likeliest first."""
    # Twilio documents DateSent filters by the day, so the window is checked here as well.
    candidates = [
        m
        for m in messages
        if str(m.direction) == API_CREATED
        and m.date_created is not None
        and m.date_created >= window.replace(microsecond=0)
        and (text.messaging_service_sid is None or m.messaging_service_sid == text.messaging_service_sid)
    ]
    # Twilio lists the newest first; the oldest since `since` is the likeliest first attempt.
    candidates.reverse()
    if text.content_sid is None:
        return [m for m in candidates if m.body == text.body]
    # A content message's list entry carries neither its ContentSid nor a body we could predict (Twilio
    # renders the template). The first message Twilio created for the person after this text was queued is
    # the one its first attempt made: a template opens a conversation, so nothing else goes to them between.
    # Failing that, the latest one in the slack before (the clocks may disagree). Timestamps are whole seconds
    # and Twilio lists the newest first, so among messages of the same second the last listed is the earliest.
    start = since.replace(microsecond=0)
    after = sorted((m for m in candidates if m.date_created >= start), key=lambda m: m.date_created)
    before = sorted((m for m in candidates if m.date_created < start), key=lambda m: m.date_created)
    return after + before[::-1]


def _failure(error: TwilioRestException) -> CarrierFailure:
    if error.status == 429:  # too many requests: nothing was created, a later retry can succeed
        return TOO_MANY_REQUESTS
    return failure_for(int(error.code)) if error.code is not None else failure_for(error.status)
