"""Structured logging via structlog, with secrets scrubbed before anything is rendered.

Exceptions are rendered here, not by the renderer: structlog's console renderer would print each frame's
local variables (API keys, tokens, phone numbers, message bodies), and a database error's message carries
what the database echoed back ("Key (number)=(+14155551234) already exists"). A logged traceback keeps its
frames and each exception's type, and a message with such details taken out.

Lines name people by ids only: no phone number and no message body is ever a field (`last_digits` shows the
end of one of reachout's own numbers where a line needs it).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

# Field names whose values are credentials; matched case-insensitively anywhere in the key.
_SECRET_KEY = re.compile(r"(token|secret|password|api_key|apikey|authorization|auth)", re.IGNORECASE)
REDACTED = "[redacted]"


# Field names seen so far and whether each names a credential: a line's names are few and always the same,
# so the pattern is searched once per name rather than once per line (this runs for every line).
_NAMES_SEEN: dict[str, bool] = {}
_MAX_NAMES_SEEN = 10_000


def _is_secret_name(key: str) -> bool:
    known = _NAMES_SEEN.get(key)
    if known is None:
        known = _SECRET_KEY.search(key) is not None
        if len(_NAMES_SEEN) < _MAX_NAMES_SEEN:
            _NAMES_SEEN[key] = known
    return known


_PLAIN = frozenset({str, int, float, bool, type(None)})  # values with nothing inside to redact


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any credential-named field, however deeply nested (mappings, lists, tuples)."""
    for key, value in event.items():
        if key == "event":
            continue
        if _is_secret_name(key):
            event[key] = REDACTED  # a value replaced, no key added: the iteration is undisturbed
        elif type(value) not in _PLAIN and isinstance(value, Mapping | list | tuple):
            event[key] = _redact(None, value)
    return event


def _redact(key: object, value: Any) -> Any:
    if isinstance(key, str) and _is_secret_name(key):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(None, v) for v in value]
    return value


def last_digits(number: str | None) -> str | None:
    """A number as a line may show it: its last four characters (`***0100`), never the whole of it."""
    return None if number is None else "***" + number[-4:]


@dataclass
class RequestFacts:
    """What a request's access log line says that only the code answering it learns: the caller's account."""

    account_id: str | None = None


_REQUEST: ContextVar[RequestFacts | None] = ContextVar("reachout_request", default=None)


@contextmanager
def request_facts() -> Iterator[RequestFacts]:
    """The facts of the request being answered in this context, for its access log line."""
    facts = RequestFacts()
    token = _REQUEST.set(facts)
    try:
        yield facts
    finally:
        _REQUEST.reset(token)


def note_account(account_id: str) -> None:
    """Name the account the current request authenticated as (outside a request: nothing to do)."""
    facts = _REQUEST.get()
    if facts is not None:
        facts.account_id = account_id


# What a database or a validator may echo back from the data it was given: PostgreSQL's DETAIL and HINT lines,
# SQLAlchemy's parameters (hidden by the engines too), Pydantic's input values.
_ECHOED_LINE = re.compile(r"^\s*(DETAIL|HINT|\[parameters):.*$", re.MULTILINE)
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$)", re.MULTILINE)
# Anything shaped like a phone number: 7 or more digits, perhaps with a + and separators.
_PHONE_NUMBER = re.compile(r"\+?\d(?:[\d ().-]{5,}\d)")
MAX_MESSAGE_CHARS = 2000
MAX_ERROR_CHARS = 300


def scrub_message(message: str) -> str:
    """An exception's message without the values it may echo (rows, parameters, inputs, phone numbers)."""
    message = _ECHOED_LINE.sub("", message)
    message = _INPUT_VALUE.sub("input_value=[redacted]", message)
    message = _PHONE_NUMBER.sub("[redacted number]", message)
    return "\n".join(line for line in message.splitlines() if line.strip())[:MAX_MESSAGE_CHARS]


def describe_error(error: BaseException) -> str:
    """An exception in a line (`TimeoutError`, `AgentError: ...`), its message scrubbed as in a traceback."""
    message = scrub_message(str(error))[:MAX_ERROR_CHARS]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


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


def render_console(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    """A console line as structlog's ConsoleRenderer lays it out without colours (time, [level], event, then
    key=value in the order the line gives them, its ids first), and the exception, if any, below it.

    Every message writes a line at each step, many of them on the hot paths: ConsoleRenderer's per-column
    formatting cost about 25 µs a line, this about 4 µs.
    """
    exception = event.pop("exception", None)
    line = f"{event.pop('timestamp', '')} [{event.pop('level', ''):<9}] "
    message = event.pop("event", "")
    if event:
        needs_quotes = _NEEDS_QUOTES.search
        pairs = " ".join(
            # A str enum is a str: shown as its value, as ConsoleRenderer shows it (not as its repr).
            [
                f"{k}={v}" if isinstance(v, str) and not needs_quotes(v) else f"{k}={v!r}"
                for k, v in event.items()
            ]
        )
        line += f"{message:<30} {pairs}"
    else:
        line += str(message)
    line = line.rstrip(" ")  # as ConsoleRenderer ends a line: a message of spaces leaves none behind
    return line if exception is None else f"{line}\n{exception}"


# A value with any of these is quoted (repr), so no value can split a line or pass for another key=value.
_NEEDS_QUOTES = re.compile(r"[ \t=\r\n\"']")

# The current second, formatted: a line's time is this and its microseconds (one tuple, swapped whole, so a
# thread never reads one second's prefix with another's number).
_SECOND: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """Now in UTC as ISO 8601 with microseconds (`2026-12-03T11:36:05.464494Z`), as structlog's TimeStamper
    writes it; the date and time of day are formatted once a second rather than on every line."""
    global _SECOND
    now = time.time()
    second = int(now)
    formatted_second, prefix = _SECOND
    if second != formatted_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND = (second, prefix)
    return f"{prefix}.{int((now - second) * 1_000_000):06d}Z"


def prepare(logger: Any, method_name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Everything a line needs before it is rendered, in one step: its level and time, its exception made
    safe, its secrets taken out (one processor instead of four: each costs a call on every line)."""
    structlog.processors.add_log_level(logger, method_name, event)
    event["timestamp"] = timestamp()
    if "exc_info" in event:
        render_exception(logger, method_name, event)
    return redact_secrets(logger, method_name, event)


class Output:
    """Where rendered lines go (structlog's WriteLogger, which it mirrors): one write and flush per line, or,
    inside `batch()` on the thread that opened it, one for all the lines the batch wrote.

    A line the stream refuses (a closed or full pipe) is dropped, as `logging` handlers drop it: the code
    that logged it has done its work (committed a transaction, answered a request), and must not be told it
    failed.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = _lock_for(file)

    def msg(self, message: str) -> None:
        """Write one line (every level's method is this one)."""
        held: list[str] | None = getattr(_BATCHES, "held", None)
        if held is not None:
            held.append(message)
        else:
            self._write(message + "\n")

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg

    def write_held(self, lines: list[str]) -> None:
        """Write lines a batch held, at once."""
        self._write("\n".join(lines) + "\n")

    def _write(self, text: str) -> None:
        with self._lock, suppress(OSError, ValueError):
            self._file.write(text)
            self._file.flush()


_BATCHES = threading.local()
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(file: TextIO) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(file), threading.Lock())


class _OutputFactory:
    def __init__(self, file: TextIO) -> None:
        self.output = Output(file)

    def __call__(self, *_: Any) -> Output:
        return self.output


@contextmanager
def batch() -> Iterator[None]:
    """Lines logged inside go out together when it ends, in one write (a batch of messages' lines, say);
    nested, the outermost batch writes them."""
    if getattr(_BATCHES, "held", None) is not None:
        yield
        return
    held: list[str] = []
    _BATCHES.held = held
    try:
        yield
    finally:
        _BATCHES.held = None
        if held:
            _CONFIGURED.output.write_held(held)


def bound(logger: structlog.typing.FilteringBoundLogger) -> structlog.typing.FilteringBoundLogger:
    """A module's `logger` bound under the configuration in force, made again only when structlog is
    configured anew: a module's logger looks its configuration up on every call, which a line written for
    every request would pay each time."""
    config = structlog.get_config()
    in_force = (config["logger_factory"], config["processors"], config["wrapper_class"])
    made = _BOUND.get(id(logger))
    if made is None or any(a is not b for a, b in zip(made[0], in_force, strict=True)):
        made = (in_force, logger.bind())
        _BOUND[id(logger)] = made
    return made[1]


_CONFIGURED = _OutputFactory(sys.stderr)
_BOUND: dict[int, tuple[tuple[Any, ...], structlog.typing.FilteringBoundLogger]] = {}


def configure(level: str = "INFO", *, json: bool = False) -> None:
    """Render reachout's structured events to stderr, as JSON lines or console lines."""
    global _CONFIGURED
    renderer: Any = structlog.processors.JSONRenderer() if json else render_console
    _CONFIGURED = _OutputFactory(sys.stderr)
    structlog.configure(
        processors=[prepare, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_CONFIGURED,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
