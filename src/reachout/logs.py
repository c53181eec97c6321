"""Structured logging via structlog, with secrets scrubbed before anything is rendered.

Exceptions are rendered here, not by the renderer: structlog's console renderer would print each frame's
local variables (API keys, tokens, phone numbers, message bodies), and a database error's message carries
what the database echoed back ("Key (number)=(+14155551234) already exists"). A logged traceback keeps its
frames and each exception's type, and a message with such details taken out.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

# Field names whose values are credentials; matched case-insensitively anywhere in the key.
_SECRET_KEY = re.compile(r"(token|secret|password|api_key|apikey|authorization|auth)", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any credential-named field, however deeply nested (mappings, lists, tuples)."""
    for key, value in list(event.items()):
        event[key] = value if key == "event" else _redact(key, value)
    return event


def _redact(key: object, value: Any) -> Any:
    if isinstance(key, str) and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(None, v) for v in value]
    return value


# What a database or a validator may echo back from the data it was given: PostgreSQL's DETAIL and HINT lines,
# SQLAlchemy's parameters (hidden by the engines too), Pydantic's input values.
_ECHOED_LINE = re.compile(r"^\s*(DETAIL|HINT|\[parameters):.*$", re.MULTILINE)
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$)", re.MULTILINE)
# Anything shaped like a phone number: 7 or more digits, perhaps with a + and separators.
_PHONE_NUMBER = re.compile(r"\+?\d(?:[\d ().-]{5,}\d)")
MAX_MESSAGE_CHARS = 2000


def scrub_message(message: str) -> str:
    """An exception's message without the values it may echo (rows, parameters, inputs, phone numbers)."""
    message = _ECHOED_LINE.sub("", message)
    message = _INPUT_VALUE.sub("input_value=[redacted]", message)
    message = _PHONE_NUMBER.sub("[redacted number]", message)
    return "\n".join(line for line in message.splitlines() if line.strip())[:MAX_MESSAGE_CHARS]


def safe_traceback(error: BaseException) -> str:
    """A traceback as Python prints it (oldest cause first), minus local variables and echoed values."""
    parts: list[str] = []
    for link, explanation in _chain(error):
        if explanation:
            parts.append(f"\n{explanation}\n\n")
        if link.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_list(traceback.extract_tb(link.__traceback__)))
        kind = type(link)
        name = (
            kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        )
        message = scrub_message(str(link))
        parts.append(f"{name}: {message}\n" if message else f"{name}\n")
    return "".join(parts).rstrip("\n")


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _chain(error: BaseException) -> Iterator[tuple[BaseException, str | None]]:
    """Each exception of a chain, oldest first, with the line Python prints between it and the one before."""
    links: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            links.append((current, _CAUSE))
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            links.append((current, _CONTEXT))
            current = current.__context__
        else:
            links.append((current, None))
            current = None
    # Oldest first, each with the line that ties it to the one printed above it.
    yield from reversed(links)


def render_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Turn `exc_info` into a safe `exception` string before any renderer sees it."""
    exc_info = event.pop("exc_info", None)
    error: BaseException | None = None
    if isinstance(exc_info, BaseException):
        error = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        error = exc_info[1]
    elif exc_info:
        error = sys.exc_info()[1]
    if error is not None:
        event["exception"] = safe_traceback(error)
    return event


def configure(level: str = "INFO", *, json: bool = False) -> None:
    """Render reachout's structured events to stderr, as JSON lines or console lines."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            render_exception,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
