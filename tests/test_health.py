"""`GET /healthz` answers 200 only once the database is reachable and migrated."""

from __future__ import annotations

import asyncio
import threading

import httpx

from reachout.app import create_app
from tests.support.service import Service, make_settings


async def test_healthy_once_migrated(service: Service) -> None:
    response = await service.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_unavailable_when_the_database_is_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # An app whose lifespan never ran against a database that does not exist yet.
    app = create_app(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/reachout.db"), run_worker=False
    )
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/healthz")
    finally:
        await app.state.runtime.database.dispose()  # the lifespan that would have closed it never ran
        await _aiosqlite_threads_finished()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def _aiosqlite_threads_finished() -> None:
    """A failed aiosqlite connect stops its thread without waiting: let it finish while the loop runs."""
    for _ in range(200):
        if not any("_connection_worker_thread" in t.name for t in threading.enumerate()):
            return
        await asyncio.sleep(0.005)


async def test_not_ready_before_migrations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/empty.db"), run_worker=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/healthz")
    finally:
        await app.state.runtime.database.dispose()
    assert (response.status_code, response.json()) == (503, {"status": "migrating"})
