"""Twilio Lookup v2 `line_type_intelligence` behind the line-type port, through the official `twilio` library.

Twilio answers an invalid number with 200, `valid: false` and no line type. A 404 carrying Twilio's code 20404
(how Lookup v1 said "no such number") is read the same way; a 404 without it is a wrong URL, not a missing
number. Anything else that is not an answer (5xx, 429, a timeout, a lost connection, or a refusal such as 401
bad credentials) is `LookupUnavailable`: a number must never be called invalid because our request was.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from reachout.carriers.twilio.carrier import TwilioSettings
from reachout.carriers.twilio.client import LazyTwilioClient
from reachout.phones.lookup import LineFacts, LineType, LookupUnavailable
from reachout.phones.numbers import PhoneNumber

LINE_TYPE_INTELLIGENCE = "line_type_intelligence"
NOT_FOUND = 20404  # Twilio's code for "the requested resource was not found": the number does not exist


class TwilioLookup:
    """Twilio Lookup v2 behind the line-type port; `lookup_base_url` replaces https://lookups.twilio.com."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings, *, lookup_base_url: str | None = None) -> None:
        self._settings = settings
        self._lookup_base_url = lookup_base_url
        self._client = LazyTwilioClient(
            settings.account_sid,
            settings.auth_token,
            api_base_url=settings.api_base_url,
            lookup_base_url=lookup_base_url,
        )

    def __repr__(self) -> str:  # the settings' repr already leaves the auth token out
        return f"TwilioLookup({self._settings!r}, lookup_base_url={self._lookup_base_url!r})"

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        """Twilio's line type intelligence for `number`; LookupUnavailable when Twilio cannot answer."""
        try:
            # The library's async client does not apply its own timeout to requests, so the deadline is ours.
            answer = await asyncio.wait_for(
                self._client.get()
                .lookups.v2.phone_numbers(number.e164)
                .fetch_async(fields=LINE_TYPE_INTELLIGENCE),
                self._settings.timeout_seconds,
            )
        except (TwilioRestException, TwilioServiceException) as error:
            if error.status == 404 and error.code == NOT_FOUND:
                return LineFacts(number.e164, valid=False, line_type=LineType.UNKNOWN)
            raise LookupUnavailable(_refusal(error)) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            raise LookupUnavailable(f"Twilio Lookup did not answer: {type(error).__name__}") from None
        return _facts(number, answer.valid, answer.line_type_intelligence)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()


def _facts(number: PhoneNumber, valid: bool | None, intelligence: Any) -> LineFacts:
    """The port's facts from Lookup's `valid` and `line_type_intelligence` (null for an invalid number)."""
    if valid is False:  # only Twilio's explicit no: the number already passed libphonenumber's check
        return LineFacts(number.e164, valid=False, line_type=LineType.UNKNOWN)
    if not isinstance(intelligence, dict):
        return LineFacts(number.e164, valid=True, line_type=LineType.UNKNOWN)
    try:
        line_type = LineType(str(intelligence.get("type")))
    except ValueError:  # no type (an error_code instead), or one Twilio added later: nothing we can act on
        line_type = LineType.UNKNOWN
    carrier = intelligence.get("carrier_name")
    return LineFacts(number.e164, valid=True, line_type=line_type, carrier_name=carrier or None)


def _refusal(error: TwilioRestException | TwilioServiceException) -> str:
    """What went wrong, by HTTP status and Twilio code: never the library's text, which quotes the request."""
    if error.status >= 500 or error.status == 429:
        return f"Twilio Lookup is unavailable: HTTP {error.status}"
    # A refusal of our request (bad credentials, no access to the package) will not pass by retrying alone.
    return f"Twilio Lookup refused the request: HTTP {error.status}, Twilio code {error.code}"
