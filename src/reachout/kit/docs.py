"""The OpenAPI document and the pages that render it (`/openapi.json`, `/docs`, `/redoc`), built per request
from the routes being served now: a route that is not served (the sandbox's, where no sandbox number is
provisioned) is left out of the document as it is out of the server.

FastAPI documents a 422 `HTTPValidationError` on every route with parameters or a body; no route gives it
(the app words a failed validation as a 400 `{"detail"}`, and each route documents its own refusals), so the
document leaves it out.

The pages load Swagger UI and ReDoc from reachout itself (`/docs-assets/`, the files the `fastapi-offline`
package ships), never from a CDN, so they work for a browser that reaches reachout and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

OPENAPI_PATH = "/openapi.json"
ASSETS_PATH = "/docs-assets"
# The package's data folder, not its Python API: its app factory would serve a fixed document, not ours.
ASSETS_PACKAGE = ("fastapi_offline", "static")
SWAGGER_JS = f"{ASSETS_PATH}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_PATH}/swagger-ui.css"
REDOC_JS = f"{ASSETS_PATH}/redoc.standalone.js"
FAVICON = f"{ASSETS_PATH}/favicon.png"
# Swagger UI's default validator badge is an image from swagger.io that would also send it the document.
SWAGGER_PARAMETERS = {"validatorUrl": None}
# ReDoc's bundle shows Redocly's logo from Redocly's CDN: the pages let the browser load images from reachout
# alone (the bundle hides an image that fails), so reading the docs asks no other host for anything.
IMAGES_FROM_HERE = {"Content-Security-Policy": "img-src 'self' data: blob:"}
Hidden = Callable[[], Awaitable[Callable[[str], bool]]]
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
# FastAPI leaves every null out of the document it builds, an example's too (which would then break its own
# schema): an example's nulls travel as this text instead, and are put back once the document is built.
NULL_MARK = "\u0000null\u0000"


def keep_nulls(example: Any) -> Any:
    """`example` with its nulls marked, so that they are still there in the document."""
    if example is None:
        return NULL_MARK
    if isinstance(example, Mapping):
        return {key: keep_nulls(value) for key, value in example.items()}
    if isinstance(example, list | tuple):
        return [keep_nulls(value) for value in example]
    return example


def _nulls_put_back(node: Any) -> Any:
    if isinstance(node, str) and node == NULL_MARK:
        return None
    if isinstance(node, dict):
        return {key: _nulls_put_back(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nulls_put_back(value) for value in node]
    return node


def answer(
    description: str,
    model: type[BaseModel] | None = None,
    example: Any = None,
    *,
    headers: Mapping[str, dict[str, Any]] | None = None,
    media_type: str = "application/json",
) -> dict[str, Any]:
    """One entry of a route's `responses=`: what the status means, the model of its JSON body, an example."""
    entry: dict[str, Any] = {"description": description}
    if model is not None:
        entry["model"] = model
    if example is not None:
        entry["content"] = {media_type: {"example": keep_nulls(example)}}
    if headers:
        entry["headers"] = dict(headers)
    return entry


class OpenApiDocument:
    """The app's OpenAPI document without the paths `hidden` names at the time of asking (and the schemas
    only they used); each variant is built once, as the routes do not change while the process runs.

    `security_schemes` are the credentials the operations' `security` requirements name, by scheme name.
    """

    def __init__(
        self, app: FastAPI, hidden: Hidden, security_schemes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        self._app = app
        self._hidden = hidden
        self._security_schemes = dict(security_schemes or {})
        self._built: dict[tuple[str, ...], dict[str, Any]] = {}

    async def current(self) -> dict[str, Any]:
        """The document as the server stands now."""
        is_hidden = await self._hidden()
        full = self._full()
        left_out = tuple(path for path in full["paths"] if is_hidden(path))
        if left_out not in self._built:
            self._built[left_out] = _without(full, set(left_out))
        return self._built[left_out]

    def _full(self) -> dict[str, Any]:
        if () not in self._built:
            app = self._app
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                webhooks=app.webhooks.routes,
            )
            document = _nulls_put_back(document)
            _without_fastapi_validation(document)
            if self._security_schemes:
                components = document.setdefault("components", {})
                components["securitySchemes"] = {
                    **components.get("securitySchemes", {}),
                    **self._security_schemes,
                }
            self._built[()] = document
        return self._built[()]


def _without_fastapi_validation(document: dict[str, Any]) -> None:
    """Leave out the 422 answers FastAPI adds by itself, and their schemas once nothing uses them."""
    fastapi_422 = {"$ref": _SCHEMA_REF + FASTAPI_VALIDATION_SCHEMAS[0]}
    for item in [*document["paths"].values(), *document.get("webhooks", {}).values()]:
        for operation in item.values():
            responses = operation.get("responses", {})
            given = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
            if given == fastapi_422:
                del responses["422"]
    components = document.get("components", {})
    schemas = components.get("schemas", {})
    used = _referenced([document["paths"], document.get("webhooks", {})], schemas)
    for name in FASTAPI_VALIDATION_SCHEMAS:
        if name not in used:
            schemas.pop(name, None)
    if "schemas" in components and not schemas:
        del components["schemas"]


def _without(document: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """`document` without `paths`, and without the component schemas nothing left refers to."""
    if not paths:
        return document
    kept = {path: item for path, item in document["paths"].items() if path not in paths}
    trimmed = {**document, "paths": kept}
    schemas = document.get("components", {}).get("schemas", {})
    used = _referenced([kept, document.get("webhooks", {})], schemas)
    components = {
        **document.get("components", {}),
        "schemas": {k: v for k, v in schemas.items() if k in used},
    }
    if not components["schemas"]:
        del components["schemas"]
    if components:
        trimmed["components"] = components
    else:
        trimmed.pop("components", None)
    return trimmed


_SCHEMA_REF = "#/components/schemas/"


def _referenced(node: Any, schemas: dict[str, Any]) -> set[str]:
    """The names of the component schemas `node` refers to, directly or through other schemas."""
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
                name = ref.removeprefix(_SCHEMA_REF)
                if name not in found:
                    found.add(name)
                    pending.append(schemas.get(name))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def docs_router(document: OpenApiDocument, title: str) -> APIRouter:
    """`/openapi.json` from `document`, the Swagger UI and ReDoc pages that read it, and their assets."""
    router = APIRouter(include_in_schema=False)
    router.mount(ASSETS_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @router.get(OPENAPI_PATH)
    async def openapi() -> JSONResponse:
        return JSONResponse(await document.current())

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} - Swagger UI",
            swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS,
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        page.headers.update(IMAGES_FROM_HERE)
        return page

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        # ReDoc's page would otherwise link Google's fonts; it falls back to the browser's own.
        page = get_redoc_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} - ReDoc",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        page.headers.update(IMAGES_FROM_HERE)
        return page

    return router
