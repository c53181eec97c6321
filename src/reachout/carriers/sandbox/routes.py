"""The sandbox's HTTP surface: virtual handsets text agent numbers and read what they received.

The sandbox is for development, and its routes are unauthenticated: they are served only while some
provisioned number uses the sandbox carrier (or `REACHOUT_SANDBOX_ROUTES=on` asks for them), and a handset
may text only a sandbox number, never as one of reachout's numbers on a real carrier. Otherwise anyone who
can reach the server could forge a person's STOP, START or HELP to a real number, or open a conversation
whose agent texts a real person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, status

from reachout.carriers.base import CarrierEvents, CarrierKind
from reachout.carriers.plugin import NumberDirectory
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.carriers.sandbox.schemas import HandsetMessage, InboundAccepted, InboundRequest
from reachout.config import SandboxRoutes
from reachout.db.engine import Database
from reachout.kit.docs import answer
from reachout.kit.http import BODY_TOO_LARGE, ErrorDetail
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164

PREFIX = "/sandbox"
HANDSET = "+14155551234"
AGENT = "+14155550100"
INBOUND_EXAMPLE = {"from": HANDSET, "to": AGENT, "body": "Can I move it to 3pm instead?"}
INBOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: answer("Taken in as the carrier takes a text.", InboundAccepted, {"sid": "SM" + "0f" * 16}),
    # The app words a body that fails validation as a 400, as `_e164` does a number it cannot parse.
    400: answer(
        "The body is not JSON, lacks a field, has one too long or holding NUL, or a number is not E.164.",
        ErrorDetail,
        {"detail": "body: Field required"},
    ),
    403: answer(
        "`to` is not a sandbox number, shares its project with a real carrier's numbers, or `from` is one of "
        "reachout's numbers on a real carrier.",
        ErrorDetail,
        {
            "detail": "to: +14155550150 is not a sandbox number; a handset can text only numbers "
            "provisioned with `carrier: sandbox`."
        },
    ),
    413: BODY_TOO_LARGE,
}
HANDSET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: answer(
        "Everything the handset received and sent, oldest first.",
        example=[
            {
                "direction": "to_handset",
                "from": AGENT,
                "to": HANDSET,
                "body": "Hi Jane, your appointment is confirmed for tomorrow at 2pm.",
                "at": "2026-06-26T14:03:12.104Z",
            },
            {**INBOUND_EXAMPLE, "direction": "from_handset", "at": "2026-06-26T14:05:02.913Z"},
        ],
    ),
    400: answer(
        "The number is not E.164.",
        ErrorDetail,
        {"detail": "number: '+1415' is not a valid phone number (too short for country code +1)"},
    ),
}


class SandboxExposure:
    """Whether the sandbox's routes are served right now."""

    def __init__(self, setting: SandboxRoutes, carrier_in_use: Callable[[str], Awaitable[bool]]) -> None:
        self._setting = setting
        self._in_use = carrier_in_use

    async def served(self) -> bool:
        """On or off as the setting says; with `auto`, while some provisioned number uses the sandbox."""
        if self._setting is SandboxRoutes.AUTO:
            return await self._in_use(CarrierKind.SANDBOX)
        return self._setting is SandboxRoutes.ON


def _e164(value: str, field: str) -> str:
    try:
        return parse_e164(value).e164
    except InvalidPhoneNumber as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{field}: {error}") from None


def sandbox_router(
    database: Database, carrier: SandboxCarrier, events: CarrierEvents, numbers: NumberDirectory
) -> APIRouter:
    """Routes for the sandbox carrier, bound to this process's database and carrier; `numbers` tells which
    carrier a provisioned number sends through, and those of its project's numbers."""
    carrier_of, carriers_beside = numbers.carrier_of_number, numbers.carriers_beside

    router = APIRouter(prefix=PREFIX, tags=["sandbox"])

    @router.post(
        "/inbound",
        status_code=status.HTTP_201_CREATED,
        responses=INBOUND_RESPONSES,
        openapi_extra={"requestBody": {"content": {"application/json": {"example": INBOUND_EXAMPLE}}}},
    )
    async def inbound(request: InboundRequest) -> InboundAccepted:
        """A handset texts a sandbox number, down the path a real carrier's inbound webhook takes."""
        from_number, to_number = _e164(request.from_, "from"), _e164(request.to, "to")
        if await carrier_of(to_number) != CarrierKind.SANDBOX:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"to: {to_number} is not a sandbox number; a handset can text only numbers provisioned "
                "with `carrier: sandbox`.",
            )
        real = sorted(await carriers_beside(to_number) - {CarrierKind.SANDBOX})
        if real:
            # Consent and automatic-answer windows are per project: a forged START here would re-subscribe
            # a real person on the project's real numbers.
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"to: {to_number} shares its project with numbers on the {', '.join(real)} carrier, whose "
                "people a sandbox text could opt in or out; give sandbox numbers a project of their own.",
            )
        sender_carrier = await carrier_of(from_number)
        if sender_carrier not in (None, CarrierKind.SANDBOX):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"from: {from_number} is one of reachout's numbers on the {sender_carrier} carrier; "
                "a handset cannot text as a real carrier's number.",
            )
        async with database.write.begin() as session:
            text = await carrier.record_inbound(session, from_number, to_number, request.body)
            await events.inbound(session, text)
        return InboundAccepted(sid=text.sid)

    @router.get("/handsets/{number}/messages", responses=HANDSET_RESPONSES)
    async def handset_messages(number: str) -> list[HandsetMessage]:
        """Everything the handset received and sent, oldest first."""
        e164 = _e164(number, "number")
        async with database.read() as session:
            return await carrier.handset(session, e164)

    return router
