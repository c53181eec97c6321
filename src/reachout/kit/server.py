"""What one client can make `reachout serve` hold, and for how long: uvicorn's httptools protocol, bounded.

uvicorn bounds none of this by itself, and each bound closes a way for a few clients to take the server down:

- **Header size** (`http_max_header_bytes`, 431): httptools has no cap, and its Python wrapper keeps a partial
  header name or value in memory until it ends, so a header that never ends grows the process without limit.
  The bytes received while a request's line and headers are incomplete are counted before the parser sees
  them; past the bound the parser is fed no more. Within a body, the bytes that bring no body (chunk framing,
  and the trailer after the last chunk, which httptools keeps as it keeps a header) are bounded the same way.
- **Header timeout** (`http_header_timeout_seconds`, 408): uvicorn only times out an idle connection between
  requests. A request's line and headers must all arrive within this, from its first byte (from the
  connection's opening for the first request): a total, so trickling a byte at a time does not extend it.
- **Body timeout** (`http_body_timeout_seconds`, 408): the longest wait for the next piece of a request body,
  so a client that stops mid-body does not hold the connection, and the request's task, for good.
- **Connections** (`http_max_connections`, 503): each open connection costs memory and a file descriptor;
  past the bound a new one is answered and closed at once, before it can send anything.

All four answers are `{"detail": "..."}` with `connection: close`. A reverse proxy in front (README,
"Running it for real") should bound the same things, and TLS; these are the last line.

The hot path stays cheap: no timer is created or cancelled per request. A connection has at most one
`TimerHandle`; a request's phases only record `loop.time()`, and when the timer fires it either expires the
phase or re-arms itself for what is left of it (a new timer is made only when a deadline comes earlier than
the pending one, or after the pending one fired on an idle connection).

Beyond uvicorn's documented `http=` protocol class, this relies on attributes of `HttpToolsProtocol` and its
`RequestResponseCycle` that are public (no underscore) but undocumented: `loop`, `transport`, `flow`
(`FlowControl.read_paused`), `cycle` (`response_started`, `response_complete`, `disconnected`,
`message_event`, `waiting_for_100_continue`), `pipeline`, `connections` and `server_state.default_headers`,
and on the parser callbacks (`on_message_begin`, `on_headers_complete`, `on_body`, `on_message_complete`)
being called from `data_received`. `pyproject.toml` pins uvicorn below 1.0; `tests/kit/test_server_bounds.py`
drives the bounds end to end through a real `reachout serve`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reachout import logs

log = logs.get_logger("http")

# A request's phase, as far as the bounds care.
_IDLE = 0  # between requests, or while the application answers one whose body is all in: no bound of ours
_HEAD = 1  # its line and headers are incomplete: the header timeout runs
_BODY = 2  # its body is incomplete: the body timeout runs
_GONE = 3  # closed, refused or handed to another protocol: nothing more to watch

# Timers may fire a little early (libuv counts milliseconds); within this of its deadline a phase has expired.
_SLACK_SECONDS = 0.005
# The connection limit's warning is logged at most this often, however many connections are refused.
_WARN_EVERY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The bounds of one `reachout serve` process's HTTP server (from the `REACHOUT_HTTP_*` settings)."""

    max_header_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int


def _refusal(status: HTTPStatus, detail: str) -> tuple[bytes, bytes]:
    """The status line, and the headers and body that follow uvicorn's default headers (server, date)."""
    body = json.dumps({"detail": detail}).encode()
    head = f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    tail = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )
    return head, tail


def bounded_protocol(limits: HttpLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with `limits` enforced: pass the class as `uvicorn.run(..., http=...)`."""
    max_header_bytes = limits.max_header_bytes
    header_timeout = limits.header_timeout_seconds
    body_timeout = limits.body_timeout_seconds
    max_connections = limits.max_connections
    too_large = _refusal(
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        f"Request line and headers are larger than {max_header_bytes} bytes.",
    )
    header_late = _refusal(
        HTTPStatus.REQUEST_TIMEOUT, f"Request line and headers did not arrive within {header_timeout:g} s."
    )
    body_late = _refusal(
        HTTPStatus.REQUEST_TIMEOUT, f"No part of the request body arrived within {body_timeout:g} s."
    )
    full = _refusal(HTTPStatus.SERVICE_UNAVAILABLE, "Too many open connections; try again shortly.")
    next_warning = 0.0

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        """One connection, within the limits of `bounded_protocol`."""

        _phase = _HEAD
        _since = 0.0  # when the head phase began, or the body's last piece arrived
        _head_bytes = 0  # received since the current request's head began (or the previous message ended)
        _framing_bytes = 0  # received within the body since its last piece (chunk framing, trailers)
        _got_body = False  # whether the read being parsed brought a piece of body
        _timer: asyncio.TimerHandle | None = None
        _timer_at = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                # Out of the count at once, so a flood of refused connections does not refuse the next one.
                self.connections.discard(self)
                self._warn_full()
                self._refuse(full)
                return
            now = self.loop.time()
            self._since = now
            self._arm(now + header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_watching()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # Counted before the parser sees them, a read at a time: what follows the end of a request in the
            # same read (a pipelined request's start) is not counted, so a head may hold one read more than
            # the bound (uvloop reads at most 256,000 bytes), never more.
            if self._phase != _BODY:
                count = self._head_bytes + len(data)
                self._head_bytes = count
                if count > max_header_bytes:
                    self._overflow(data, count)
                    return
            else:
                # Within a body, reads that bring no body with them are framing: chunk sizes, extensions and
                # the trailer after the last chunk, which httptools keeps in memory like a header. They are
                # bounded as a head is; a piece of body (on_body) starts the count again.
                self._got_body = False
                super().data_received(data)
                if self._phase == _BODY and not self._got_body:
                    self._framing_bytes += len(data)
                    if self._framing_bytes > max_header_bytes and not self.transport.is_closing():
                        log.debug("http refused", status=431, phase="body framing", client=self.client)
                        self._refuse(too_large)
                return
            super().data_received(data)

        def _overflow(self, data: bytes, count: int) -> None:
            """Feed only the part of `data` within the header bound; refuse if the head is incomplete."""
            within = len(data) - (count - max_header_bytes)
            if within > 0:
                super().data_received(data[:within])
            if self._phase == _GONE or self.transport.is_closing():
                return  # refused (400), or upgraded to another protocol
            if self._phase == _BODY or self._head_bytes == 0:
                # The head ended within the bound: the rest is a body, or counts towards the next head.
                self.data_received(data[within:])
                return
            log.debug("http refused", status=431, client=self.client)
            self._refuse(too_large)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._phase == _IDLE:  # the first request's clock has run since connection_made
                now = self.loop.time()
                self._phase = _HEAD
                self._since = now
                self._arm(now + header_timeout)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            # A request without a body completes at once (on_message_complete follows in the same feed).
            now = self.loop.time()
            self._phase = _BODY
            self._framing_bytes = 0
            self._since = now
            self._arm(now + body_timeout)

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            self._since = self.loop.time()
            self._framing_bytes = 0
            self._got_body = True

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self._phase != _GONE:
                self._phase = _IDLE
                self._head_bytes = 0

        def handle_websocket_upgrade(self) -> None:
            self._stop_watching()  # the WebSocket protocol takes the transport over
            super().handle_websocket_upgrade()

        def _arm(self, deadline: float) -> None:
            """Make sure the timer fires by `deadline`: a pending earlier one re-arms itself when it fires."""
            timer = self._timer
            if timer is not None:
                if self._timer_at <= deadline:
                    return
                timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

        def _on_timer(self) -> None:
            self._timer = None
            phase = self._phase
            if phase in (_IDLE, _GONE) or self.transport.is_closing():
                return
            now = self.loop.time()
            cycle = self.cycle
            if self.flow.read_paused or (
                phase == _BODY and cycle is not None and cycle.waiting_for_100_continue
            ):
                # The server is the one holding things up, not the client: it stopped reading (a pipelined
                # request waits, or the application has not read the body yet), or the client waits for the
                # `100 Continue` it asked for, which goes out when the application first reads. The wait
                # starts again.
                self._since = now
            deadline = self._since + (header_timeout if phase == _HEAD else body_timeout)
            if deadline > now + _SLACK_SECONDS:
                self._arm(deadline)
                return
            log.debug(
                "http refused", status=408, phase="head" if phase == _HEAD else "body", client=self.client
            )
            self._refuse(header_late if phase == _HEAD else body_late)

        def _refuse(self, response: tuple[bytes, bytes]) -> None:
            """Answer `response` if the client would take it as this request's answer, then close."""
            phase = self._phase
            self._stop_watching()
            cycle = self.cycle
            quiet = not self.pipeline and (
                cycle is None
                or cycle.response_complete
                or (phase == _BODY and not cycle.response_started)  # its own request, not yet answered
            )
            if cycle is not None and not cycle.response_complete:
                # The application may still be on this request: from now on its receive() sees a disconnect
                # and its send() writes nothing (what connection_lost would do, one loop iteration later).
                cycle.disconnected = True
                cycle.message_event.set()
            if quiet:
                head, tail = response
                default = b"".join(
                    name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
                )
                self.transport.write(head + default + tail)
            self.transport.close()

        def _stop_watching(self) -> None:
            self._phase = _GONE
            timer = self._timer
            if timer is not None:
                timer.cancel()
                self._timer = None

        def _warn_full(self) -> None:
            nonlocal next_warning
            now = self.loop.time()
            if now >= next_warning:
                next_warning = now + _WARN_EVERY_SECONDS
                log.warning(
                    "http connection limit reached; refusing new connections with 503",
                    max_connections=max_connections,
                )

    return BoundedHttpToolsProtocol
