"""What reachout sends customers' endpoints, as the OpenAPI document's `webhooks`: every event type, its
payload's shape (`{"type", "timestamp", "data"}`, Standard Webhooks), and a sample of each."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

from reachout.events.types import DELIVERED_TYPES, DESCRIPTIONS, EventType, Subject, subject_of
from reachout.kit.docs import keep_nulls

HEADERS_TEXT = (
    "Signed as Standard Webhooks: `webhook-id` (the event id, the same on every retry and replay: "
    "de-duplicate on it), `webhook-timestamp` (the attempt's Unix time) and `webhook-signature` "
    "(`v1,<base64 HMAC-SHA256>`, one per secret during a rotation). Answer 2xx within 15 s; anything else "
    "(a redirect too) is retried at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (± 20 %); "
    "410 disables the endpoint."
)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageData(_Shape):
    id: str
    project_id: str | None
    conversation_id: str | None
    use_case_id: str | None
    direction: Literal["outbound", "inbound"]
    channel: Literal["sms", "whatsapp"]
    from_: str | None = Field(alias="from")
    to: str
    body: str
    status: str
    error_code: int | None
    error_message: str | None = Field(description="What the error code means.")
    segments: int
    encoding: str
    carrier: str | None
    carrier_sid: str | None
    created_at: str
    handed_off_at: str | None
    delivered_at: str | None
    errored_at: str | None
    updated_at: str
    metadata: dict[str, Any] | None = Field(description="The conversation's metadata; null outside one.")


class ConversationData(_Shape):
    id: str
    project_id: str
    channel: Literal["sms", "whatsapp"]
    agent_number: str
    user_number: str
    status: Literal["open", "ended"]
    end_reason: str | None = Field(description="timeout (inactivity), completed, opted_out, superseded…")
    answered_by: Literal["agent", "nobody"]
    use_case_id: str | None
    metadata: dict[str, Any]
    variables: dict[str, Any] = Field(description="What the agent learned (a pathway's extracted variables).")
    opened_at: str
    last_activity_at: str
    ended_at: str | None


class ContactData(_Shape):
    project_id: str
    phone_number: str
    opted_out: bool
    keyword: str = Field(description="The word the person texted, or `carrier:<code>` when a carrier said.")
    changed_at: str


DATA_FOR: dict[Subject, type[BaseModel]] = {
    Subject.MESSAGE: MessageData,
    Subject.CONVERSATION: ConversationData,
    Subject.CONTACT: ContactData,
}

_MESSAGE = {
    "id": "01a23c87-ce81-761a-befd-94b5002b13cd",
    "project_id": "clinic",
    "conversation_id": "convo_01a23c87ce81761abefd94b4",
    "use_case_id": None,
    "direction": "outbound",
    "channel": "sms",
    "from": "+14155550100",
    "to": "+14155551234",
    "body": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. Reply to this message if you need "
    "to reschedule.",
    "status": "delivered",
    "error_code": None,
    "error_message": None,
    "segments": 1,
    "encoding": "GSM-7",
    "carrier": "sandbox",
    "carrier_sid": "SM647881b6f13118cf8c94335d91734e10",
    "created_at": "2026-12-03T15:31:02.120Z",
    "handed_off_at": "2026-12-03T15:31:02.310Z",
    "delivered_at": "2026-12-03T15:31:05.310Z",
    "errored_at": None,
    "updated_at": "2026-12-03T15:31:05.310Z",
    "metadata": {"appointment_id": "A-1042"},
}
_CONVERSATION = {
    "id": "convo_01a23c87ce81761abefd94b4",
    "project_id": "clinic",
    "channel": "sms",
    "agent_number": "+14155550100",
    "user_number": "+14155551234",
    "status": "open",
    "end_reason": None,
    "answered_by": "agent",
    "use_case_id": None,
    "metadata": {"appointment_id": "A-1042"},
    "variables": {},
    "opened_at": "2026-12-03T15:31:02.120Z",
    "last_activity_at": "2026-12-03T15:31:02.120Z",
    "ended_at": None,
}
_CONTACT = {
    "project_id": "clinic",
    "phone_number": "+14155551234",
    "opted_out": True,
    "keyword": "STOP",
    "changed_at": "2026-12-03T15:40:11.002Z",
}


def sample(event_type: EventType) -> dict[str, Any]:
    """A payload of this type as an endpoint receives it."""
    subject = subject_of(event_type)
    data: dict[str, Any]
    if subject is Subject.MESSAGE:
        data = dict(_MESSAGE) | _MESSAGE_AS[event_type]
    elif subject is Subject.CONVERSATION:
        data = dict(_CONVERSATION) | _CONVERSATION_AS.get(event_type, {})
    else:
        data = dict(_CONTACT) | (
            {"opted_out": False, "keyword": "START"} if event_type.value.endswith("in") else {}
        )
    return {
        "type": event_type.value,
        "timestamp": data.get("updated_at", "2026-12-03T15:40:11.002Z"),
        "data": data,
    }


_NOT_YET = {"handed_off_at": None, "delivered_at": None, "carrier_sid": None, "carrier": None}
_MESSAGE_AS: dict[EventType, dict[str, Any]] = {
    EventType.MESSAGE_QUEUED: {"status": "queued", **_NOT_YET, "updated_at": "2026-12-03T15:31:02.120Z"},
    EventType.MESSAGE_SENDING: {
        "status": "sending",
        "delivered_at": None,
        "updated_at": "2026-12-03T15:31:02.310Z",
    },
    EventType.MESSAGE_SENT: {
        "status": "sent",
        "delivered_at": None,
        "updated_at": "2026-12-03T15:31:03.310Z",
    },
    EventType.MESSAGE_DELIVERED: {},
    EventType.MESSAGE_READ: {
        "status": "read",
        "channel": "whatsapp",
        "updated_at": "2026-12-03T15:32:40.000Z",
    },
    EventType.MESSAGE_UNDELIVERED: {
        "status": "undelivered",
        "delivered_at": None,
        "error_code": 30006,
        "error_message": "Landline or unreachable carrier",
        "errored_at": "2026-12-03T15:31:05.310Z",
    },
    EventType.MESSAGE_FAILED: {
        "status": "failed",
        **_NOT_YET,
        "error_code": 21610,
        "error_message": "Attempt to send to unsubscribed recipient",
        "errored_at": "2026-12-03T15:31:02.310Z",
        "updated_at": "2026-12-03T15:31:02.310Z",
    },
    EventType.MESSAGE_CANCELED: {
        "status": "canceled",
        **_NOT_YET,
        "error_code": 30036,
        "error_message": "Validity period expired",
        "errored_at": "2026-12-03T19:31:02.120Z",
        "updated_at": "2026-12-03T19:31:02.120Z",
    },
    EventType.MESSAGE_RECEIVED: {
        "id": "01a23c87-cf85-724d-8a2e-b0aaab796903",
        "direction": "inbound",
        "from": "+14155551234",
        "to": "+14155550100",
        "body": "Can we make it 3pm?",
        "status": "received",
        "carrier_sid": "SM690e42483ae534dff39f15a2605cfd47",
        "handed_off_at": None,
        "delivered_at": None,
        "created_at": "2026-12-03T15:33:10.002Z",
        "updated_at": "2026-12-03T15:33:10.002Z",
    },
}
_ENDED = {
    "status": "ended",
    "ended_at": "2026-12-03T16:03:10.002Z",
    "last_activity_at": "2026-12-03T15:33:12.500Z",
}
_CONVERSATION_AS: dict[EventType, dict[str, Any]] = {
    EventType.CONVERSATION_WARNING_SENT: {"last_activity_at": "2026-12-03T15:33:12.500Z"},
    EventType.CONVERSATION_AGENT_FAILED: {"last_activity_at": "2026-12-03T15:33:12.500Z"},
    EventType.CONVERSATION_ENDED: {**_ENDED, "end_reason": "inactivity"},
}


def register(app: FastAPI) -> None:
    """Add every delivered event type to the app's OpenAPI `webhooks`."""
    for event_type in DELIVERED_TYPES:
        _declare(app, event_type)


def _declare(app: FastAPI, event_type: EventType) -> None:
    name = "".join(part.title() for part in event_type.value.replace("_", ".").split(".")) + "Event"
    payload = create_model(
        name,
        __base__=_Shape,
        __doc__=DESCRIPTIONS[event_type],
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type]
        timestamp=(str, Field(description="When it happened (UTC, ISO 8601).")),
        data=(DATA_FOR[subject_of(event_type)], ...),
    )

    async def receive(body: Any) -> None:
        """Documented only: reachout calls this on the customer's endpoint."""

    # Set here, not written: the payload model exists only once this function is called.
    receive.__annotations__ = {"body": payload, "return": None}
    app.webhooks.post(
        event_type.value,
        summary=event_type.value,
        description=f"{DESCRIPTIONS[event_type]}\n\n{HEADERS_TEXT}",
        openapi_extra={
            "requestBody": {"content": {"application/json": {"example": keep_nulls(sample(event_type))}}}
        },
        responses={200: {"description": "Any 2xx: received. Anything else is retried."}},
        tags=["webhooks"],
    )(receive)
