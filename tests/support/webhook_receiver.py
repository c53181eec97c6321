"""A customer's Standard Webhooks endpoint for tests: a real HTTP server on 127.0.0.1, in its own thread.

Every request is verified as a customer verifies it, by the reference library (`standardwebhooks`): with
each configured secret (a rotation keeps two), against the real clock (5 minutes' tolerance). Any exception
from the library is a failed verification: 400, recorded with the reason. Every request is recorded
(`received`); `events()` is what a receiver de-duplicating on webhook-id processes: the first accepted
(verified, answered 2xx) delivery of each id, in arrival order; later accepted ones count in `duplicates`.

Programmable per test, from any thread: `fail_first(n)` answers the first n attempts of every webhook-id
with 500; `respond(...)` answers every request as told (410, 302 with Location, 429 with Retry-After, ...);
`delay(seconds)` before answering; `recover()` back to "200 ok". Each receiver serves in its own thread and
event loop, so a slow one holds up no other. Use `async with WebhookReceiver(secret) as receiver` (or a
plain `with`), point the service at `receiver.url`, then `await receiver.wait_for(n)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

OK_BODY = b"ok"
REJECTED = 400
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    """One request as the endpoint saw it, and what it answered."""

    webhook_id: str | None
    timestamp: str | None  # the `webhook-timestamp` header, as sent
    signature: str | None  # the `webhook-signature` header, as sent
    body: Any  # the parsed JSON body; None when it is not JSON
    raw: bytes
    headers: dict[str, str]
    path: str
    arrived_at: datetime  # real UTC time
    status: int
    verified: bool
    reason: str | None  # why verification failed; None when it passed
    attempt: int  # 1 for the first request carrying this webhook-id, 2 for the next, ...

    @property
    def accepted(self) -> bool:
        """Verified and answered 2xx: what a de-duplicating receiver would have processed."""
        return self.verified and 200 <= self.status < 300

    @property
    def type(self) -> Any:
        """The event's `type`, if the body has one."""
        return self.body.get("type") if isinstance(self.body, dict) else None

    @property
    def data(self) -> Any:
        """The event's `data`, if the body has it."""
        return self.body.get("data") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class Answer:
    """A programmed response: status, extra headers and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class WebhookReceiver:
    """A customer's webhook endpoint verifying with `secrets`, recording what it receives; see the module."""

    def __init__(self, *secrets: str) -> None:
        if not secrets:
            raise ValueError("a webhook receiver needs at least one secret")
        self.secrets = list(secrets)
        self._verifiers = [Webhook(secret) for secret in secrets]  # a malformed secret fails here, at once
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._received: list[Delivery] = []
        self._attempts: dict[str, int] = {}  # requests per webhook-id
        self._verified_attempts: dict[str, int] = {}  # verified requests per webhook-id, for fail_first
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._fail_first: tuple[int, Answer] | None = None
        self._respond: Answer | None = None
        self._respond_times: int | None = None
        self._delay = 0.0
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint's URL (any path under it is served too)."""
        if self._port is None:
            raise RuntimeError("the webhook receiver is not started")
        return f"http://127.0.0.1:{self._port}/webhooks"

    def start(self) -> Self:
        """Serve on a free 127.0.0.1 port in a background thread; returns once it answers."""
        if self._thread is not None:
            raise RuntimeError("the webhook receiver is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port in between
        config = uvicorn.Config(
            self._app(), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="webhook-receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                self._thread = None
                raise RuntimeError("the webhook receiver did not start") from self._failure
            time.sleep(0.002)
        self._port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving, cutting short any delayed answer; returns once the thread has ended."""
        server, thread, loop, stopping = self._server, self._thread, self._loop, self._stopping
        if server is None or thread is None:
            return
        server.should_exit = True
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT)
        self._server, self._thread, self._port = None, None, None
        if thread.is_alive():
            raise RuntimeError("the webhook receiver did not stop")

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as error:  # reported by start()
            self._failure = error
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        await self._server.serve(sockets=[sock])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # --- behaviour -----------------------------------------------------------------------------------------

    def fail_first(
        self, n: int, status: int = 500, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> None:
        """Answer `status` to the first `n` verified attempts of each webhook-id (per id), then 2xx."""
        with self._lock:
            self._fail_first = (n, Answer(status, dict(headers or {}), body))

    def respond(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        times: int | None = None,
    ) -> None:
        """Answer every request (signed or not) so; `times`: only the next that many, then as before."""
        with self._lock:
            self._respond = Answer(status, dict(headers or {}), body)
            self._respond_times = times

    def delay(self, seconds: float) -> None:
        """Wait `seconds` before answering each request (a slow endpoint)."""
        with self._lock:
            self._delay = seconds

    def recover(self) -> None:
        """Forget `fail_first`, `respond` and `delay`: answer "200 ok" at once again."""
        with self._lock:
            self._fail_first = self._respond = self._respond_times = None
            self._delay = 0.0

    # --- what was received ---------------------------------------------------------------------------------

    @property
    def received(self) -> list[Delivery]:
        """Every request, in arrival order (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def rejected(self) -> list[Delivery]:
        """The requests that failed verification."""
        return [d for d in self.received if not d.verified]

    def events(self) -> list[Delivery]:
        """The first accepted delivery of each webhook-id, in arrival order: what a de-duplicator handles."""
        with self._lock:
            return self._events()

    @property
    def by_id(self) -> dict[str, Delivery]:
        """`events()` by webhook-id (in arrival order)."""
        return {d.webhook_id: d for d in self.events() if d.webhook_id is not None}

    @property
    def duplicates(self) -> dict[str, int]:
        """Per webhook-id, how many accepted deliveries came after the first (ids with none are left out)."""
        counts: dict[str, int] = {}
        for d in self.received:
            if d.accepted and d.webhook_id is not None:
                counts[d.webhook_id] = counts.get(d.webhook_id, 0) + 1
        return {key: n - 1 for key, n in counts.items() if n > 1}

    def attempts(self, webhook_id: str) -> list[Delivery]:
        """Every request carrying `webhook_id`, accepted or not, in arrival order."""
        return [d for d in self.received if d.webhook_id == webhook_id]

    def _events(self) -> list[Delivery]:
        seen: dict[str, Delivery] = {}
        for d in self._received:
            if d.accepted and d.webhook_id is not None and d.webhook_id not in seen:
                seen[d.webhook_id] = d
        return list(seen.values())

    # --- waiting -------------------------------------------------------------------------------------------

    async def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[Delivery]:
        """Wait until `n` distinct events have been accepted; returns `events()`, or raises TimeoutError."""
        return await self._wait_async(lambda: len(self._events()) >= n, f"{n} events", timeout)

    async def wait_for_requests(self, n: int = 1, timeout: float = 5.0) -> list[Delivery]:
        """Wait until `n` requests (any outcome) have been answered; returns `received`."""
        return await self._wait_async(
            lambda: len(self._received) >= n, f"{n} requests", timeout, events=False
        )

    def wait_for_sync(self, n: int = 1, timeout: float = 5.0) -> list[Delivery]:
        """`wait_for`, blocking the calling thread (for tests without an event loop)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._events()) >= n, timeout):
                raise TimeoutError(self._timeout_message(f"{n} events", timeout))
            return self._events()

    def wait_for_requests_sync(self, n: int = 1, timeout: float = 5.0) -> list[Delivery]:
        """`wait_for_requests`, blocking the calling thread."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= n, timeout):
                raise TimeoutError(self._timeout_message(f"{n} requests", timeout))
            return list(self._received)

    async def _wait_async(
        self, done: Callable[[], bool], what: str, timeout: float, *, events: bool = True
    ) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = (loop, asyncio.Event())
        with self._lock:
            self._async_waiters.add(waiter)
        try:
            while True:
                waiter[1].clear()  # before looking, so a delivery landing in between still wakes us
                with self._lock:
                    if done():
                        return self._events() if events else list(self._received)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    with self._lock:
                        raise TimeoutError(self._timeout_message(what, timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), remaining)
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

    def _timeout_message(self, what: str, timeout: float) -> str:
        seen = ", ".join(
            f"{d.webhook_id} → {d.status}" + ("" if d.verified else f" ({d.reason})") for d in self._received
        )
        return f"no {what} within {timeout}s; received {len(self._received)} requests: [{seen}]"

    # --- serving -------------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        raw = await request.body()
        arrived_at = datetime.now(UTC)
        headers = dict(request.headers)
        verified, reason = self._verify(raw, headers)  # on arrival: a slow answer does not age the timestamp
        with self._lock:
            delay = self._delay
        if delay > 0 and self._stopping is not None:
            with contextlib.suppress(TimeoutError):  # stopping cuts the delay short
                await asyncio.wait_for(self._stopping.wait(), delay)
        webhook_id = headers.get("webhook-id")
        with self._lock:
            attempt = self._attempts.get(webhook_id or "", 0) + 1
            self._attempts[webhook_id or ""] = attempt
            answer = self._answer(verified, reason, webhook_id)
            self._received.append(
                Delivery(
                    webhook_id=webhook_id,
                    timestamp=headers.get("webhook-timestamp"),
                    signature=headers.get("webhook-signature"),
                    body=_parsed(raw),
                    raw=raw,
                    headers=headers,
                    path=request.url.path,
                    arrived_at=arrived_at,
                    status=answer.status,
                    verified=verified,
                    reason=reason,
                    attempt=attempt,
                )
            )
            self._changed.notify_all()
            for loop, event in self._async_waiters:
                with contextlib.suppress(RuntimeError):  # that waiter's loop has closed
                    loop.call_soon_threadsafe(event.set)
        return Response(
            answer.body, status_code=answer.status, headers=answer.headers, media_type="text/plain"
        )

    def _verify(self, raw: bytes, headers: dict[str, str]) -> tuple[bool, str | None]:
        """Whether any secret verifies the request (by the reference library), else every secret's reason."""
        reasons: list[str] = []
        for verifier in self._verifiers:
            try:
                verifier.verify(raw, headers)
            except Exception as error:  # whatever the library raises, the request is not verified
                reasons.append(f"{type(error).__name__}: {error}")
            else:
                return True, None
        return False, "; ".join(dict.fromkeys(reasons))

    def _answer(self, verified: bool, reason: str | None, webhook_id: str | None) -> Answer:
        """What to answer, under the lock: `respond`, else 400 when unverified, else `fail_first`, else ok."""
        if self._respond is not None:
            answer = self._respond
            if self._respond_times is not None:
                self._respond_times -= 1
                if self._respond_times <= 0:
                    self._respond = self._respond_times = None
            return answer
        if not verified:
            return Answer(REJECTED, body=f"invalid webhook: {reason}".encode())
        if webhook_id is not None:
            tries = self._verified_attempts[webhook_id] = self._verified_attempts.get(webhook_id, 0) + 1
            if self._fail_first is not None and tries <= self._fail_first[0]:
                return self._fail_first[1]
        return Answer(200, body=OK_BODY)


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
