"""Pydantic validation errors as one readable sentence, for dialects whose errors are a single string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
