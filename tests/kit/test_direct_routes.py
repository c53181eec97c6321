"""Routes whose endpoint takes the request alone are called with it directly, and must answer a Response."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from reachout.app import create_app
from reachout.kit.clock import FakeClock
from reachout.kit.http import called_with_the_request, refusals_as
from tests.support.service import make_settings

Route = refusals_as(lambda error: JSONResponse({"detail": error.message}, status_code=500))


def _app() -> FastAPI:
    router = APIRouter(route_class=Route)

    @router.post("/plain")
    async def plain(request: Request) -> Response:
        return Response(await request.body(), status_code=202)

    @router.get("/query")
    async def query(request: Request, page: int = 1) -> Response:
        return Response(str(page))

    @router.get("/not-a-response")
    async def not_a_response(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    app.include_router(router)
    return app


def _route(app: FastAPI, path: str, method: str = "GET") -> APIRoute:
    [route] = [r for r in _api_routes(app.routes) if r.path == path and method in (r.methods or ())]
    return route


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """The API routes of an app, through the routers it included (each is a route of its own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def test_only_an_endpoint_that_takes_nothing_but_the_request_is_called_directly() -> None:
    app = _app()
    assert called_with_the_request(_route(app, "/plain", "POST")) is not None
    assert called_with_the_request(_route(app, "/query")) is None  # FastAPI parses its query string


async def test_a_direct_route_answers_and_one_that_returns_no_response_is_a_bug_in_its_shape() -> None:
    app = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        sent = await client.post("/plain", content=b"hello")
        assert (sent.status_code, sent.content) == (202, b"hello")
        assert (await client.get("/query?page=3")).text == "3"
        broken = await client.get("/not-a-response")
    assert broken.status_code == 500
    assert broken.json() == {"detail": "Internal server error."}
    assert broken.headers["connection"] == "close"


def test_the_send_routes_are_called_directly(database_url: str, clock: FakeClock) -> None:
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    for path in ("/v1/outbound-sms", "/v1/sms"):
        assert called_with_the_request(_route(app, path, "POST")) is not None, path
