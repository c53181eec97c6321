"""`GET /healthz` answers 200 only once the database is reachable and migrated."""

from __future__ import annotations

import httpx

from reachout.app import create_app
from tests.conftest import Service, make_settings


async def test_healthy_once_migrated(service: Service) -> None:
    response = await service.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_unavailable_when_the_database_is_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # An app whose lifespan never ran against a database that does not exist yet.
    app = create_app(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/reachout.db"), run_worker=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def test_not_ready_before_migrations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/empty.db"), run_worker=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "migrating"})
