"""The error catalogue: every refusal reachout makes, as a machine code with no HTTP status.

One exception, `ReachoutError`, carries an `ErrorCode`: a refusal of the caller (`UNAUTHENTICATED`,
`INVALID_REQUEST`, …) or of the send (`SENDER_NOT_PROVISIONED`, `RATE_LIMITED`, …), or `INTERNAL_ERROR`, not a
refusal but a bug, told in the dialect's shape (`kit.http.refusals_as`). Each dialect maps every code to its
own status and body (`dialects/*`), so the same refusal reads as a PolyAI 400 `{"detail"}`, an Amigo 422 or a
Bland `{data, errors}` without the domain knowing HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a request was refused."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CONNECTOR_NOT_FOUND = "CONNECTOR_NOT_FOUND"
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_PHONE_NUMBER = "INVALID_PHONE_NUMBER"
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    NO_NUMBERS_PROVISIONED = "NO_NUMBERS_PROVISIONED"
    SENDER_NOT_PROVISIONED = "SENDER_NOT_PROVISIONED"
    RATE_LIMITED = "RATE_LIMITED"
    RECIPIENT_OPTED_OUT = "RECIPIENT_OPTED_OUT"
    RECIPIENT_LANDLINE = "RECIPIENT_LANDLINE"
    COUNTRY_NOT_ALLOWED = "COUNTRY_NOT_ALLOWED"
    USE_CASE_NOT_FOUND = "USE_CASE_NOT_FOUND"
    USE_CASE_INACTIVE = "USE_CASE_INACTIVE"
    CAMPAIGN_NOT_VERIFIED = "CAMPAIGN_NOT_VERIFIED"
    BRAND_SUSPENDED = "BRAND_SUSPENDED"
    NOT_FOUND = "NOT_FOUND"
    INTERNAL_ERROR = "INTERNAL_ERROR"  # a bug, never a refusal: the one code every dialect answers with a 5xx


class ReachoutError(Exception):
    """A refusal the caller can act on; never a bug."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ReachoutError({self.code.value}, {self.message!r})"
