"""The sandbox's HTTP surface: virtual handsets text agent numbers and read what they received."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from reachout.carriers.base import CarrierEvents
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.carriers.sandbox.schemas import HandsetMessage, InboundAccepted, InboundRequest
from reachout.db.engine import Database
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164


def _e164(value: str, field: str) -> str:
    try:
        return parse_e164(value).e164
    except InvalidPhoneNumber as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{field}: {error}") from None


def sandbox_router(database: Database, carrier: SandboxCarrier, events: CarrierEvents) -> APIRouter:
    """Routes for the sandbox carrier, bound to this process's database and carrier."""
    router = APIRouter(prefix="/sandbox", tags=["sandbox"])

    @router.post("/inbound", status_code=status.HTTP_201_CREATED)
    async def inbound(request: InboundRequest) -> InboundAccepted:
        """A handset texts an agent number; the text takes the path a real carrier's inbound webhook takes."""
        from_number, to_number = _e164(request.from_, "from"), _e164(request.to, "to")
        async with database.write.begin() as session:
            text = await carrier.record_inbound(session, from_number, to_number, request.body)
            await events.inbound(session, text)
        return InboundAccepted(sid=text.sid)

    @router.get("/handsets/{number}/messages")
    async def handset_messages(number: str) -> list[HandsetMessage]:
        """Everything the handset received and sent, oldest first."""
        e164 = _e164(number, "number")
        async with database.read() as session:
            return await carrier.handset(session, e164)

    return router
