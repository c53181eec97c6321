"""The Twilio carrier: sends through the official `twilio` library's asynchronous client.

Twilio's answers map onto the port: a created message is `Accepted` with its sid; a refusal with a Twilio
error code is `Rejected` with that code's catalogue entry (which says whether a retry can help: 20429 and
5xx can, 21211 cannot); a request that timed out or lost its connection is `CarrierUnavailable`, because
Twilio may have accepted it, so it must never be retried blindly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from reachout.carriers.base import (
    Accepted,
    CarrierKind,
    CarrierUnavailable,
    OutboundText,
    Rejected,
    SendResult,
)
from reachout.carriers.failures import CarrierFailure, failure_for

STATUS_CALLBACK_PATH = "/v1/webhook/twilio/sms-status"
FIND_SLACK = timedelta(minutes=1)
FIND_LIMIT = 50
WHATSAPP = "whatsapp"


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
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    @property
    def status_callback_url(self) -> str:
        return self._settings.public_url.rstrip("/") + STATUS_CALLBACK_PATH

    def _twilio(self) -> Client:
        # Built on first use: the library's HTTP session must be created inside the running event loop.
        if self._client is None:
            self._http = AsyncTwilioHttpClient()
            self._client = Client(
                self._settings.account_sid, self._settings.auth_token, http_client=self._http
            )
            if self._settings.api_base_url is not None:
                self._client.api.base_url = self._settings.api_base_url.rstrip("/")
        return self._client

    async def send(self, text: OutboundText) -> SendResult:
        """Create the message at Twilio; see the module docstring for what each outcome means."""
        try:
            # The library's async client does not apply its own timeout to requests, so the deadline is ours.
            message = await asyncio.wait_for(
                self._twilio().messages.create_async(
                    to=_address(text.channel, text.to_number),
                    from_=_address(text.channel, text.from_number),
                    body=text.body,
                    status_callback=self.status_callback_url,
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

    async def find(self, text: OutboundText, since: datetime) -> Accepted | None:
        """A message to the same recipient, from the same sender, with the same body, created since `since`.

        Twilio keeps no idempotency key, so this is how an unknown outcome is settled before any re-send.
        """
        try:
            messages = await asyncio.wait_for(
                self._twilio().messages.list_async(
                    to=_address(text.channel, text.to_number),
                    from_=_address(text.channel, text.from_number),
                    # Twilio's clock and ours may disagree a little: look a minute further back.
                    date_sent_after=since - FIND_SLACK,
                    limit=FIND_LIMIT,
                ),
                self._settings.timeout_seconds,
            )
        except TwilioRestException as error:
            raise CarrierUnavailable(f"Twilio could not list messages: HTTP {error.status}") from None
        except (TimeoutError, aiohttp.ClientError) as error:
            raise CarrierUnavailable(f"Twilio did not answer: {type(error).__name__}") from None
        for message in messages:
            if message.body == text.body:
                return Accepted(str(message.sid))
        return None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()
        self._client = self._http = None


def _address(channel: str, number: str) -> str:
    """Twilio's address for a number on a channel: `whatsapp:+1...` or the bare number for SMS."""
    return f"{WHATSAPP}:{number}" if channel == WHATSAPP else number


def _failure(error: TwilioRestException) -> CarrierFailure:
    if error.status == 429:  # too many requests: nothing was created, a later retry can succeed
        return failure_for(20429)
    return failure_for(int(error.code)) if error.code is not None else failure_for(error.status)
