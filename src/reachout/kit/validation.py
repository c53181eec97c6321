"""Pydantic validation errors as one readable sentence, for dialects whose errors are a single string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reachout.errors import ErrorCode, ReachoutError

Model = TypeVar("Model", bound=BaseModel)

# FastAPI prefixes locations with where the value came from; callers care only about the field.
_SOURCES = {"body", "query", "path", "header"}


def describe(errors: Sequence[Any]) -> str:
    """`user_number: Field required; message: Input should be a valid string`."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ())]
        if len(location) > 1 and location[0] in _SOURCES:
            location = location[1:]  # only the leading source: a field may itself be called "body"
        field = ".".join(location)
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts) or "Invalid request."


def parse_json_body(content_type: str | None, raw: bytes, model: type[Model]) -> Model:
    """A JSON request body as `model`; any problem with it is an INVALID_REQUEST that says what is wrong."""
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "Content-Type must be application/json.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise ReachoutError(ErrorCode.INVALID_REQUEST, "Request body is not valid JSON.") from None
        if any(e["type"] == "model_type" for e in error.errors()):
            raise ReachoutError(ErrorCode.INVALID_REQUEST, "Request body must be a JSON object.") from None
        raise ReachoutError(ErrorCode.INVALID_REQUEST, describe(error.errors())) from None
