"""A Twilio emulator for tests: the Messages resource of Twilio's REST API, served on 127.0.0.1.

It answers the official `twilio` library the way Twilio's API reference documents: Basic auth with the
account sid and auth token; `POST .../Messages.json` (form-encoded; To, From or MessagingServiceSid, Body or
ContentSid, StatusCallback, ValidityPeriod) → 201 with the message resource, or Twilio's error body (`code`,
`message`, `more_info`, `status`); `GET .../Messages.json` (To, From, DateSent>, PageSize) and
`GET .../Messages/{Sid}.json`. It records every request, and posts status callbacks signed as Twilio does
(`X-Twilio-Signature`: HMAC-SHA1 of the URL and sorted form parameters, by `twilio.request_validator`).

Fault injection: `hang_after_accept` makes the next creates store the message and then not answer, as when a
network timeout hides a send Twilio did accept.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from reachout.messaging.segments import count_segments
from tests.support.processes import free_port

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "emulator_auth_token_0123456789ab"
API = "/2010-04-01/Accounts/{account}"
UNROUTABLE = {"+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number.")}


@dataclass
class EmulatedMessage:
    sid: str
    to: str
    from_: str | None
    body: str
    status: str
    status_callback: str | None
    messaging_service_sid: str | None
    date_created: datetime
    num_segments: int
    error_code: int | None = None

    def resource(self) -> dict[str, Any]:
        created = format_datetime(self.date_created)
        return {
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{API.format(account=ACCOUNT_SID)}/Messages/{self.sid}/Media.json"
            },
            "to": self.to,
            "uri": f"{API.format(account=ACCOUNT_SID)}/Messages/{self.sid}.json",
        }


@dataclass
class TwilioEmulator:
    """The emulator's state; `base_url` is what reachout's Twilio carrier is pointed at."""

    base_url: str = ""
    messages: dict[str, EmulatedMessage] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    hang_after_accept: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        base = API.format(account="{account}")
        return Starlette(
            routes=[
                Route(f"{base}/Messages.json", self._create, methods=["POST"]),
                Route(f"{base}/Messages.json", self._list, methods=["GET"]),
                Route(base + "/Messages/{sid}.json", self._fetch, methods=["GET"]),
            ]
        )

    # --- the REST API ------------------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(("POST", request.url.path, form))
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        to = form.get("To")
        if not to:
            return _error(21604, "A 'To' phone number is required.", 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _error(21603, "A 'From' phone number is required.", 400)
        if not form.get("Body") and not form.get("ContentSid"):
            return _error(21602, "Message body is required.", 400)
        if to in UNROUTABLE:
            code, text = UNROUTABLE[to]
            return _error(code, text, 400)
        body = form.get("Body", "")
        message = EmulatedMessage(
            sid="SM" + secrets.token_hex(16),
            to=to,
            from_=form.get("From"),
            body=body,
            status="accepted" if form.get("MessagingServiceSid") and not form.get("From") else "queued",
            status_callback=form.get("StatusCallback"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            date_created=datetime.now(UTC).replace(microsecond=0),
            num_segments=count_segments(body).segments,
        )
        self.messages[message.sid] = message
        if self.hang_after_accept > 0:
            self.hang_after_accept -= 1
            await self._release.wait()  # accepted, but the answer never comes back
        return JSONResponse(message.resource(), status_code=201)

    async def _list(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, dict(request.query_params)))
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        params = request.query_params
        found = [
            m
            for m in sorted(self.messages.values(), key=lambda m: m.date_created, reverse=True)
            if (not params.get("To") or m.to == params["To"])
            and (not params.get("From") or m.from_ == params["From"])
            and (not params.get("DateSent>") or m.date_created >= _moment(params["DateSent>"]))
        ]
        size = int(params.get("PageSize", 50))
        uri = request.url.path
        return JSONResponse(
            {
                "messages": [m.resource() for m in found[:size]],
                "start": 0,
                "end": max(0, min(size, len(found)) - 1),
                "page": 0,
                "page_size": size,
                "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": f"{uri}?PageSize={size}&Page=0",
            }
        )

    async def _fetch(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, {}))
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        message = self.messages.get(request.path_params["sid"])
        if message is None:
            return _error(20404, "The requested resource was not found", 404)
        return JSONResponse(message.resource())

    # --- what Twilio does later ---------------------------------------------------------------------------

    def creates(self) -> list[dict[str, str]]:
        """The form of every Messages create request received, oldest first."""
        return [
            form
            for method, path, form in self.requests
            if method == "POST" and path.endswith("/Messages.json")
        ]

    async def report(
        self, sid: str, status: str, *, error_code: int | None = None, url: str | None = None, **extra: str
    ) -> httpx.Response:
        """Post a status callback for a message, signed as Twilio signs it; returns reachout's answer."""
        message = self.messages[sid]
        target = url or message.status_callback
        assert target is not None, "the message was sent without a StatusCallback"
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": message.from_ or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        params.update(extra)
        message.status = status
        signature = RequestValidator(AUTH_TOKEN).compute_signature(target, params)
        async with httpx.AsyncClient() as client:
            return await client.post(target, data=params, headers={"X-Twilio-Signature": signature})


def _moment(text: str) -> datetime:
    """A DateSent filter: the library sends YYYY-MM-DDTHH:MM:SSZ; Twilio also takes a bare date."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _authenticate(request: Request) -> Response | None:
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    if request.headers.get("authorization") != expected:
        return _error(20003, "Authenticate", 401)
    return None


def _error(code: int, message: str, status: int) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


@asynccontextmanager
async def running_emulator() -> AsyncIterator[TwilioEmulator]:
    """Serve an emulator on a free 127.0.0.1 port for the duration of the block."""
    emulator = TwilioEmulator()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(emulator.app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    emulator.base_url = f"http://127.0.0.1:{port}"
    try:
        yield emulator
    finally:
        emulator._release.set()
        server.should_exit = True
        await task
