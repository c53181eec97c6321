"""The Amigo dialect's shapes as the OpenAPI document tells them: the SMS message object `POST /v1/sms/` and
`GET /v1/sms/{message_id}` answer with, the `{"detail"}` refusals, and examples after the reference page."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reachout.kit.docs import answer
from reachout.kit.http import BODY_TOO_LARGE, INTERNAL_ERROR_MESSAGE, RETRY_AFTER, ErrorDetail

AmigoStatus = Literal["pending", "sent", "delivered", "failed", "undelivered"]


class AmigoSmsMessage(BaseModel):
    """An outbound SMS as Amigo tells it: what is not known yet is null (the sender until it is chosen, the
    carrier's sid and the segment count until the hand-off)."""

    model_config = ConfigDict(title="AmigoSmsMessage")

    id: uuid.UUID = Field(description="Unique identifier for the outbound SMS message.")
    use_case_id: uuid.UUID = Field(description="SMS use case this message was sent through.")
    message_sid: str | None = Field(
        description="The carrier's message identifier, used for delivery tracking; null until the hand-off."
    )
    from_number: str | None = Field(description="Sender phone number, null until chosen from the pool.")
    to_number: str = Field(description="Destination phone number (E.164).")
    body: str = Field(description="Message body that was sent.")
    num_segments: int | None = Field(ge=1, description="Number of message segments, null until the hand-off.")
    status: AmigoStatus = Field(description="Current delivery status.")
    handed_off_at: datetime | None = Field(description="When the message was handed off to the carrier.")
    delivered_at: datetime | None = Field(description="When the carrier confirmed delivery.")
    errored_at: datetime | None = Field(description="When a delivery error occurred.")
    error_code: int | None = Field(description="Error code on failed or undelivered messages.")
    created_at: datetime = Field(description="When the message record was created.")
    updated_at: datetime = Field(description="When the message record was last updated.")


EXAMPLE_USE_CASE = "3f6c2a3e-5b0e-4a8e-9d3c-0f1e2d3c4b5a"
EXAMPLE_MESSAGE_ID = "01963c4e-8b1a-7c3e-9f00-3a6f0c2d4e51"
SEND_EXAMPLE = {
    "use_case_id": EXAMPLE_USE_CASE,
    "to_phone_number": "+14155551234",
    "message": "Your appointment is tomorrow at 2pm. Reply STOP to opt out.",
}
ACCEPTED_EXAMPLE = {
    "id": EXAMPLE_MESSAGE_ID,
    "use_case_id": EXAMPLE_USE_CASE,
    "message_sid": None,
    "from_number": None,
    "to_number": "+14155551234",
    "body": SEND_EXAMPLE["message"],
    "num_segments": None,
    "status": "pending",
    "handed_off_at": None,
    "delivered_at": None,
    "errored_at": None,
    "error_code": None,
    "created_at": "2026-06-26T14:03:11.482113+00:00",
    "updated_at": "2026-06-26T14:03:11.482113+00:00",
}
DELIVERED_EXAMPLE = ACCEPTED_EXAMPLE | {
    "message_sid": "SM3f1a9c0b7d2e4f6a8b0c1d2e3f4a5b6c",
    "from_number": "+14155550110",
    "num_segments": 1,
    "status": "delivered",
    "handed_off_at": "2026-06-26T14:03:11.731904+00:00",
    "delivered_at": "2026-06-26T14:03:14.902117+00:00",
    "updated_at": "2026-06-26T14:03:14.902117+00:00",
}

UNAUTHENTICATED = answer(
    "Missing or invalid API key (`Authorization: Bearer KEY`).", ErrorDetail, {"detail": "Invalid API key."}
)
INTERNAL_ERROR = answer(
    "Unexpected server error; the connection is closed.", ErrorDetail, {"detail": INTERNAL_ERROR_MESSAGE}
)
SEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: answer(
        "Accepted and stored: its sender is chosen from the pool and it is handed to the carrier later.",
        AmigoSmsMessage,
        ACCEPTED_EXAMPLE,
    ),
    401: UNAUTHENTICATED,
    404: answer(
        "SMS use case not found, deleted, or another account's.",
        ErrorDetail,
        {"detail": f"SMS use case '{EXAMPLE_USE_CASE}' not found."},
    ),
    413: BODY_TOO_LARGE,
    422: answer(
        "The body is invalid (not JSON, a missing or malformed field, a message outside 1-1600 characters), "
        "or the send is refused: the use case is inactive or has no sender, no verified A2P campaign for "
        "a US long-code pool, a suspended brand, a destination that is not a real number, a landline, "
        "opted out, or in a region the use case may not send to.",
        ErrorDetail,
        {"detail": "to_phone_number: +14155550123 is a landline, which cannot receive text messages."},
    ),
    429: answer(
        "Per-project rate limit exceeded: back off for `Retry-After` seconds and retry.",
        ErrorDetail,
        {"detail": "Rate limit of 60 requests per 60 s exceeded for this project; retry later."},
        headers=RETRY_AFTER,
    ),
    500: INTERNAL_ERROR,
}
GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: answer("The message as it stands now.", AmigoSmsMessage, DELIVERED_EXAMPLE),
    401: UNAUTHENTICATED,
    404: answer(
        "No such message among those sent through the caller's use cases (any text that is not a UUID "
        "names none).",
        ErrorDetail,
        {"detail": f"SMS message '{EXAMPLE_MESSAGE_ID}' not found."},
    ),
    500: INTERNAL_ERROR,
}
MESSAGE_ID_TEXT = "The `id` the send answered with; any text that is not a UUID names no message (a 404)."
