"""A Twilio emulator for tests: the Messages resource of Twilio's REST API and Lookup v2, served on 127.0.0.1.

It answers the official `twilio` library the way Twilio's API reference documents: Basic auth with the
account sid and auth token; `POST .../Messages.json` (form-encoded; To; From or MessagingServiceSid; Body,
MediaUrl or ContentSid with ContentVariables; StatusCallback, ValidityPeriod) → 201 with the message resource,
or Twilio's error body (`code`, `message`, `more_info`, `status`) with Twilio's code for what is wrong;
`GET .../Messages.json` (To, From, DateSent>, PageSize) and `GET .../Messages/{Sid}.json`. It records every
request, and posts webhooks signed as Twilio signs them (`X-Twilio-Signature`: HMAC-SHA1 of the URL and
sorted form parameters, by `twilio.request_validator`): status callbacks (`report`) and inbound texts
(`text_in`). `GET /v2/PhoneNumbers/{PhoneNumber}` is Lookup v2 (point the library's `lookups` domain here):
200 with `valid` as libphonenumber judges the number (else `validation_errors` in Twilio's vocabulary), and
`line_type_intelligence` only when `Fields` asks for it.

Configuration, as a Twilio account has it: `services` (Messaging Service sid → its sender pool), `contents`
(ContentSid → the template's body, `{{1}}`-style placeholders), `unsubscribed` (recipients who replied STOP:
a create to them is refused with 21610); for Lookup, `line_types` (E.164 → Twilio's line type; "mobile"
otherwise), `carrier_names` (E.164 → carrier name) and `invalid` (numbers Twilio calls invalid though
libphonenumber accepts them: their numbering data are updated apart). `lookups` lists every number looked up.
Fault injection: `hang_after_accept` makes the next creates store the message and then not answer, as when a
network timeout hides a send Twilio did accept; `hang_lookups` makes the next lookups not answer;
`lookup_fault` makes lookups answer that HTTP status (503, 429, ...) with Twilio's error body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import phonenumbers
import uvicorn
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from reachout.config import Settings
from reachout.messaging.segments import count_segments
from tests.support.processes import free_port
from tests.support.service import make_settings

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "emulator_auth_token_0123456789ab"
API = "/2010-04-01/Accounts/{account}"
UNROUTABLE = {"+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number.")}
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
WHATSAPP = "whatsapp:"
LINE_TYPE_INTELLIGENCE = "line_type_intelligence"
DEFAULT_LINE_TYPE = "mobile"
DEFAULT_CARRIER = "Emulated Wireless"
# ITU's test network (MCC 001, MNC 01): no real operator is ever named by the emulator's answers.
TEST_MCC, TEST_MNC = "001", "01"
# Twilio documents no carrier data for the other types (personal, tollFree, premium, ..., unknown).
CARRIED_TYPES = {"mobile", "landline", "fixedVoip", "nonFixedVoip"}
FAULTS = {
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


@dataclass
class EmulatedMessage:
    sid: str
    to: str
    from_: str | None  # what the resource shows: None while a Messaging Service has not picked a sender
    body: str
    status: str
    status_callback: str | None
    messaging_service_sid: str | None
    date_created: datetime
    num_segments: int
    error_code: int | None = None
    sender: str | None = None  # the sender Twilio chose (or was given); reported in status callbacks
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    media_urls: list[str] = field(default_factory=list)
    direction: str = "outbound-api"

    def resource(self) -> dict[str, Any]:
        created = format_datetime(self.date_created)
        return {
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": self.direction,
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
    services: dict[str, list[str]] = field(default_factory=dict)
    contents: dict[str, str] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    inbound_url: str | None = None  # the number's "a message comes in" webhook
    hang_after_accept: int = 0
    line_types: dict[str, str] = field(default_factory=dict)
    carrier_names: dict[str, str] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    lookups: list[str] = field(default_factory=list)
    hang_lookups: int = 0
    lookup_fault: int | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        base = API.format(account="{account}")
        return Starlette(
            routes=[
                Route(f"{base}/Messages.json", self._create, methods=["POST"]),
                Route(f"{base}/Messages.json", self._list, methods=["GET"]),
                Route(base + "/Messages/{sid}.json", self._fetch, methods=["GET"]),
                Route("/v2/PhoneNumbers/{number}", self._lookup, methods=["GET"]),
            ]
        )

    # --- the REST API ------------------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        received = await request.form()
        form = {k: str(v) for k, v in received.items()}
        self.requests.append(("POST", request.url.path, form))
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        refusal, variables = self._refusal(form, [str(url) for url in received.getlist("MediaUrl")])
        if refusal is not None:
            return refusal
        to, service = form["To"], form.get("MessagingServiceSid")
        # Twilio picks a service's sender from its pool; the resource names it once the message leaves.
        sender = form.get("From") or _on_channel(to, self.services[service or ""][0])
        content = form.get("ContentSid")
        body = _render(self.contents[content], variables) if content else form.get("Body", "")
        picking = service is not None and not form.get("From")
        message = EmulatedMessage(
            sid="SM" + secrets.token_hex(16),
            to=to,
            from_=None if picking else sender,
            body=body,
            status="accepted" if picking else "queued",
            status_callback=form.get("StatusCallback"),
            messaging_service_sid=service,
            date_created=datetime.now(UTC).replace(microsecond=0),
            # Twilio's documented answer: 0 segments until a service has picked the sender.
            num_segments=0 if picking else count_segments(body).segments,
            sender=sender,
            content_sid=content,
            content_variables=variables if content else None,
            media_urls=[str(url) for url in received.getlist("MediaUrl")],
        )
        self.messages[message.sid] = message
        if self.hang_after_accept > 0:
            self.hang_after_accept -= 1
            await self._release.wait()  # accepted, but the answer never comes back
        return JSONResponse(message.resource(), status_code=201)

    def _refusal(
        self, form: dict[str, str], media: list[str]
    ) -> tuple[JSONResponse | None, dict[str, str] | None]:
        """Twilio's documented refusal of a create request, if any, and its parsed ContentVariables."""
        to, service = form.get("To"), form.get("MessagingServiceSid")
        content, raw_variables = form.get("ContentSid"), form.get("ContentVariables")
        if not to:
            return _error(21604, "A 'To' phone number is required.", 400), None
        if not form.get("From") and not service:
            return _error(21603, "A 'From' phone number is required.", 400), None
        if raw_variables is not None and not content:
            message = "A ContentSid must be specified if ContentVariables are provided in the request."
            return _error(21654, message, 400), None
        if not form.get("Body") and not media and not content:
            if service:
                return _error(21619, "A Message Body, Media URL or Content SID is required.", 400), None
            return _error(21602, "Message body is required.", 400), None
        variables = _variables(raw_variables) if raw_variables is not None else {}
        if variables is None:
            return _error(21656, "The ContentVariables Parameter is invalid.", 400), None
        if service and service not in self.services:
            return _error(21701, "The Messaging Service does not exist.", 400), None
        if service and not form.get("From") and not self.services[service]:
            return _error(21704, "The Messaging Service contains no phone numbers.", 400), None
        if content and content not in self.contents:
            return _error(21655, "The ContentSid is Invalid.", 400), None
        if to in UNROUTABLE:
            code, text = UNROUTABLE[to]
            return _error(code, text, 400), None
        if to.removeprefix(WHATSAPP) in self.unsubscribed:
            return _error(21610, "Attempt to send to unsubscribed recipient", 400), None
        return None, variables

    async def _list(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, dict(request.query_params)))
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        params = request.query_params
        found = [
            m
            # Newest first, as Twilio lists them (within one second too: the later created comes first).
            for m in sorted(reversed(self.messages.values()), key=lambda m: m.date_created, reverse=True)
            if (not params.get("To") or m.to == params["To"])
            and (not params.get("From") or m.from_ == params["From"])
            # Twilio documents DateSent filters by the day (on or after midnight of the date given).
            and (not params.get("DateSent>") or m.date_created.date() >= _moment(params["DateSent>"]).date())
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

    # --- Lookup v2 ------------------------------------------------------------------------------------------

    async def _lookup(self, request: Request) -> Response:
        raw = request.path_params["number"]
        self.requests.append(("GET", request.url.path, dict(request.query_params)))
        self.lookups.append(raw)
        if self.lookup_fault is not None:  # an outage answers before anything checks the request
            code, text = FAULTS.get(self.lookup_fault, (self.lookup_fault, "Error"))
            return _error(code, text, self.lookup_fault)
        refusal = _authenticate(request)
        if refusal is not None:
            return refusal
        if self.hang_lookups > 0:
            self.hang_lookups -= 1
            await self._release.wait()  # the answer never comes
        parsed, errors = _validate(raw, request.query_params.get("CountryCode") or "US")
        number = phonenumbers.format_number(parsed, PhoneNumberFormat.E164) if parsed else raw
        if number in self.invalid:
            errors = ["INVALID_BUT_POSSIBLE"]
        fields = {f.strip() for f in request.query_params.get("Fields", "").split(",")}
        intelligence = None
        if LINE_TYPE_INTELLIGENCE in fields and not errors:  # an invalid number has no line to describe
            intelligence = self._line_type_intelligence(number)
        return JSONResponse(
            {
                "calling_country_code": str(parsed.country_code) if parsed else None,
                "country_code": phonenumbers.region_code_for_number(parsed) if parsed else None,
                "phone_number": number,
                "national_format": None
                if errors or parsed is None
                else phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
                "valid": not errors,
                "validation_errors": errors,
                "caller_name": None,
                "sim_swap": None,
                "call_forwarding": None,
                "line_status": None,
                LINE_TYPE_INTELLIGENCE: intelligence,
                "identity_match": None,
                "reassigned_number": None,
                "sms_pumping_risk": None,
                "phone_number_quality_score": None,
                "pre_fill": None,
                "url": f"{str(request.base_url).rstrip('/')}/v2/PhoneNumbers/{number}",
            }
        )

    def _line_type_intelligence(self, number: str) -> dict[str, Any]:
        kind = self.line_types.get(number, DEFAULT_LINE_TYPE)
        carried = kind in CARRIED_TYPES
        return {
            "mobile_country_code": TEST_MCC if carried else None,
            "mobile_network_code": TEST_MNC if kind == "mobile" else None,  # Twilio gives it for mobiles only
            "carrier_name": self.carrier_names.get(number, DEFAULT_CARRIER) if carried else None,
            "type": kind,
            "error_code": None,
        }

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
        message.from_ = message.sender  # once it moves, the message names the sender Twilio chose
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": message.sender or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.messaging_service_sid is not None:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        params.update(extra)
        message.status = status
        if error_code is not None:
            message.error_code = error_code
        return await _post_signed(target, params)

    async def text_in(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        sid: str | None = None,
        whatsapp: bool = False,
        url: str | None = None,
        without: tuple[str, ...] = (),
        signature: str | None = None,
        **extra: str,
    ) -> httpx.Response:
        """A person texts `to`: Twilio's signed inbound webhook. `without` drops parameters before signing;
        `signature` replaces the real one (a forgery; "" sends none)."""
        target = url or self.inbound_url
        assert target is not None, "no inbound webhook URL configured"
        sid = sid or "SM" + secrets.token_hex(16)
        prefix = WHATSAPP if whatsapp else ""
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": prefix + from_,
            "FromCountry": "US",
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(count_segments(body).segments),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": prefix + to,
            "ToCountry": "US",
        }
        if whatsapp:
            params |= {"ProfileName": "Jane", "WaId": from_.removeprefix("+")}
        params.update(extra)
        for name in without:
            params.pop(name, None)
        if sid not in self.messages:
            self.messages[sid] = EmulatedMessage(
                sid=sid,
                to=prefix + to,
                from_=prefix + from_,
                body=body,
                status="received",
                status_callback=None,
                messaging_service_sid=extra.get("MessagingServiceSid"),
                date_created=datetime.now(UTC).replace(microsecond=0),
                num_segments=count_segments(body).segments,
                sender=prefix + from_,
                direction="inbound",
            )
        return await _post_signed(target, params, signature)


async def _post_signed(url: str, params: dict[str, str], signature: str | None = None) -> httpx.Response:
    """POST a webhook form as Twilio does, signed with the account's auth token unless told otherwise."""
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    async with httpx.AsyncClient() as client:
        return await client.post(url, data=params, headers=headers)


def _on_channel(to: str, number: str) -> str:
    """A sender on the recipient's channel: `whatsapp:` when the recipient is a WhatsApp address."""
    return WHATSAPP + number if to.startswith(WHATSAPP) else number


def _variables(raw: str) -> dict[str, str] | None:
    """ContentVariables as Twilio accepts them: a JSON object of non-empty strings (else None)."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) and v for v in parsed.values()):
        return None
    return {str(k): v for k, v in parsed.items()}


def _render(template: str, variables: dict[str, str] | None) -> str:
    """A content template's body with its placeholders filled, as Twilio renders it."""
    values = variables or {}
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    NumberParseException.TOO_SHORT_NSN: "TOO_SHORT",
    NumberParseException.TOO_SHORT_AFTER_IDD: "TOO_SHORT",
    NumberParseException.TOO_LONG: "TOO_LONG",
}
_IMPOSSIBLE = {
    ValidationResult.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    ValidationResult.TOO_SHORT: "TOO_SHORT",
    ValidationResult.TOO_LONG: "TOO_LONG",
    ValidationResult.INVALID_LENGTH: "INVALID_LENGTH",
}


def _validate(text: str, region: str) -> tuple[phonenumbers.PhoneNumber | None, list[str]]:
    """The parsed number (if it parses) and Lookup's `validation_errors` for it: libphonenumber's verdict, in
    the names Twilio documents (libphonenumber's own)."""
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as error:
        return None, [_PARSE_ERRORS.get(error.error_type, "NOT_A_NUMBER")]
    if phonenumbers.is_valid_number(parsed):
        return parsed, []
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    return parsed, [_IMPOSSIBLE.get(reason, "INVALID_BUT_POSSIBLE")]


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


@asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Serve an ASGI app (reachout itself) on 127.0.0.1:`port`, where the emulator's webhooks reach it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started (see its log)")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def reachout_settings(emulator: TwilioEmulator, database_url: str, port: int, **overrides: Any) -> Settings:
    """Settings of a reachout served on 127.0.0.1:`port` whose Twilio account is this emulator's."""
    return make_settings(
        database_url,
        public_url=f"http://127.0.0.1:{port}",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=emulator.base_url,
        **overrides,
    )


def numbers_on_twilio(document: dict[str, Any]) -> dict[str, Any]:
    """The provisioning document with every project's numbers moved to the Twilio carrier."""
    for account in document.get("accounts", []):
        for project in account.get("projects", []):
            for number in project.get("numbers", []):
                number["carrier"] = "twilio"
    return document
