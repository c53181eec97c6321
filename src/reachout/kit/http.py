"""HTTP plumbing shared by every dialect: the request's edge (the last word on a failure nothing else
answered, the access log), the request body size limit, gated mounts, and refusals (and bugs) in a dialect's
shape."""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reachout import logs
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.docs import answer
from reachout.logs import get_logger

log = get_logger("http")
access = get_logger("access")

# Polled by load balancers and orchestrators every few seconds: their lines are detail, not traffic.
QUIET_PATHS = frozenset({"/healthz"})
MAX_LOGGED_PATH_CHARS = 200


Answered = Callable[[Scope, int, float], None]
"""Told of each request answered: its scope, its status, and the seconds until the answer began."""


class RequestEdge:
    """ASGI middleware, outermost: the last word on a failure nothing else answered, and one access line per
    request. Each answered request is also handed to `observers` (the accept-latency histogram, say).

    A failure no route answered becomes a 500 `{"detail"}` with `connection: close`, logged without its
    locals or the data it carried (`reachout.logs`). Without it the server would log the raw traceback
    itself, and close a keep-alive connection its client was told it could reuse, so the client's next
    request would meet a reset.

    The access line gives method, path, status, latency in ms and the account its key authenticated (never
    the key, a header or the query string). The path is the route's template
    (`/sandbox/handsets/{number}/messages`), so a value in the path is never logged; a path no route matched
    is logged with anything shaped like a phone number taken out. One layer does all three: each layer a
    request passes costs it a coroutine and a wrapped `send`.
    """

    def __init__(self, app: ASGIApp, observers: Sequence[Answered] = ()) -> None:
        self._app = app
        self._observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        answered_at = 0.0

        async def tracked(message: Message) -> None:
            nonlocal status, answered_at
            if message["type"] == "http.response.start":
                status, answered_at = message["status"], time.perf_counter()
            await send(message)

        with logs.request_facts() as facts:
            try:
                await self._app(scope, receive, tracked)
            except ClientDisconnect:
                # Not a bug: the client left before its body was in (anyone can: no error to alert on).
                log.info(
                    "client went away before its request was read",
                    method=scope.get("method"),
                    path=scope["path"],
                )
            except Exception:
                log.exception(
                    "unexpected error answering a request", method=scope.get("method"), path=scope["path"]
                )
                # Once half a response is out, nothing more can be sent: the server closes the connection.
                if status is None:
                    await JSONResponse(
                        {"detail": INTERNAL_ERROR_MESSAGE},
                        status_code=500,
                        headers={"connection": "close"},
                    )(scope, receive, tracked)
            finally:
                if status is not None:
                    for observe in self._observers:
                        observe(scope, status, answered_at - started)
                self._log(scope, status, started, facts.account_id)

    @staticmethod
    def _log(scope: Scope, status: int | None, started: float, account_id: str | None) -> None:
        raw_path: str = scope["path"]
        level = logging.DEBUG if raw_path in QUIET_PATHS else logging.INFO
        logger = logs.bound(access)
        if logger.is_enabled_for(level):
            logger.log(
                level,
                "http request",
                method=scope.get("method"),
                path=_route_path(scope),
                status=status,  # None: the client left before any answer
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                account_id=account_id,
            )


def _route_path(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return logs.scrub_message(scope["path"])[:MAX_LOGGED_PATH_CHARS]


class ErrorDetail(BaseModel):
    """`{"detail": TEXT}`: a refusal as PolyAI and Amigo word it, and as the server's own limits do."""

    model_config = ConfigDict(title="ErrorDetail")

    detail: str = Field(description="A human-readable description of the error.")


# `detail_response` sends it with every refusal that has a wait (a rate limit's).
RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


class BodyLimitMiddleware:
    """Answer 413 `{"detail"}` with `connection: close` to any request body over `max_bytes`, before the
    application sees any of it.

    The oversized body is first read and thrown away, a chunk at a time, up to `max_discarded_bytes` in all
    (as nginx's lingering close does): a client that writes its whole body before it reads (urllib, requests)
    would otherwise meet a connection reset instead of the 413, as the kernel resets a socket closed with
    unread data. Answered at once, without reading: a request that asked `Expect: 100-continue` (it has not
    sent the body, and reading would tell it to), and one whose declared length is past the discard bound.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_discarded_bytes: int) -> None:
        self._app = app
        self._max = max_bytes
        self._max_discarded = max_discarded_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(send)
                return
            length = int(declared)
            if length > self._max:
                expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
                if not expects_continue and length <= self._max_discarded:
                    await self._discard(receive, 0)
                await self._refuse(send)
                return
            await self._app(scope, receive, send)
            return
        # No declared length (chunked): read up to the limit first, then replay what was read.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if size > self._max:
                chunks.clear()  # hold no more of it while the rest is thrown away
                if message.get("more_body", False):
                    await self._discard(receive, size)
                await self._refuse(send)
                return
            chunks.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self._app(scope, replay, send)

    async def _discard(self, receive: Receive, size: int) -> None:
        """Read the rest of the body and drop it, until `size` bytes in all pass the discard bound (the close
        that follows may then reset the client)."""
        while size <= self._max_discarded:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"Request body is larger than {self._max} bytes."}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


INTERNAL_ERROR_MESSAGE = "Internal server error."
# The 413 every operation that takes a body may give, from `BodyLimitMiddleware` before any route.
BODY_TOO_LARGE = answer(
    "The body is larger than the server takes (REACHOUT_MAX_BODY_BYTES); the connection is closed.",
    ErrorDetail,
    {"detail": "Request body is larger than 1048576 bytes."},
)


Gate = tuple[Callable[[str], bool], Callable[[], Awaitable[bool]]]


class MountGate:
    """ASGI middleware: a path a gate covers is a 404 while the gate says its routes are not served (the
    answer for a path never mounted, whatever the method or body)."""

    def __init__(self, app: ASGIApp, gates: Sequence[Gate]) -> None:
        self._app = app
        self._gates = tuple(gates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for covers, served in self._gates:
                if covers(scope["path"]) and not await served():
                    response = JSONResponse({"detail": "Not Found"}, status_code=404)
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def called_with_the_request(route: APIRoute) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
    """A handler that awaits the route's endpoint with the request alone, for an endpoint that takes nothing
    else and answers with a `Response` itself (the send routes read and check their own bodies); None for
    any other.

    FastAPI's own handler would still look for a body, parse the query string and cookies, solve an empty
    set of dependencies and inspect the answer: about 6 % of an accept's CPU, for nothing.
    """
    dependant = route.dependant
    name = dependant.request_param_name
    takes_more = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if name is None or any(takes_more) or not inspect.iscoroutinefunction(route.endpoint):
        return None
    endpoint = route.endpoint

    async def handle(request: Request) -> Response:
        response = await endpoint(**{name: request})
        if not isinstance(response, Response):
            raise TypeError(f"{route.path} must answer with a Response, not {type(response).__name__}")
        return response

    return handle


def refusals_as(render: Callable[[ReachoutError], Response]) -> type[APIRoute]:
    """A route class that answers every `ReachoutError` its endpoints raise with `render(error)`, and any
    other failure as `render` shapes an `INTERNAL_ERROR`, so a bug too is told in the dialect's shape.

    Each dialect passes its own shape (PolyAI's `{"detail"}`, Bland's `{data, errors}`).
    """

    class RefusingRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = called_with_the_request(self) or super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except ReachoutError as error:
                    return render(error)
                except (HTTPException, RequestValidationError, ClientDisconnect):
                    raise  # FastAPI's own answers (a malformed path parameter, say), or nobody to answer
                except Exception:
                    log.exception(
                        "unexpected error answering a request", method=request.method, path=request.url.path
                    )
                    response = render(ReachoutError(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE))
                    # After a surprise nothing about the connection is certain: say it will close, and close.
                    response.headers["connection"] = "close"
                    return response

            return handle

    return RefusingRoute


def detail_response(error: ReachoutError, status_for: Mapping[ErrorCode, int]) -> JSONResponse:
    """A refusal as `{"detail": message}` with the dialect's status for its code, and `Retry-After` (whole
    seconds) when the caller should wait."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse({"detail": error.message}, status_code=status_for[error.code], headers=headers)
