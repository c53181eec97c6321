"""HTTP plumbing shared by every dialect: the request body size limit, and refusals in a dialect's shape."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reachout.errors import ErrorCode, ReachoutError


class BodyLimitMiddleware:
    """Answer 413 to any request body over `max_bytes`, before the application reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self._max:
                await self._refuse(send)
                return
            await self._app(scope, receive, send)
            return
        # No declared length (chunked): read up to the limit first, then replay what was read.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self._max:
                await self._refuse(send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self._app(scope, replay, send)

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


def refusals_as(render: Callable[[ReachoutError], Response]) -> type[APIRoute]:
    """A route class that answers every `ReachoutError` its endpoints raise with `render(error)`.

    Each dialect passes its own shape (PolyAI's `{"detail"}`, Bland's `{data, errors}`).
    """

    class RefusingRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except ReachoutError as error:
                    return render(error)

            return handle

    return RefusingRoute


def detail_response(error: ReachoutError, status_for: Mapping[ErrorCode, int]) -> JSONResponse:
    """A refusal as `{"detail": message}` with the dialect's status for its code, and `Retry-After` (whole
    seconds) when the caller should wait."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse({"detail": error.message}, status_code=status_for[error.code], headers=headers)
