"""The PolyAI dialect's example request, a send through it, and (a plugin) one shared service per backend
and module for requests that must write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from reachout.app import create_app
from reachout.conversations.models import Conversation
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from tests.support import databases
from tests.support.provisioning import POLYAI_HEADERS, USER, standard_document
from tests.support.service import BACKENDS, Service, make_settings

PATH = "/v1/outbound-sms"
# The reference page's own example request.
EXAMPLE_MESSAGE = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
    "Reply to this message if you need to reschedule."
)
EXAMPLE: dict[str, Any] = {"message": EXAMPLE_MESSAGE, "user_number": USER}


async def send(service: Service, **body: Any) -> int:
    """Send a short greeting to USER (`body` changes or adds fields); returns the response's status."""
    payload = {"message": "Hi Jane, see you tomorrow at 2pm.", "user_number": USER} | body
    response = await service.client.post(PATH, json=payload, headers=POLYAI_HEADERS)
    return response.status_code


async def counts(service: Service) -> tuple[int, int]:
    """How many messages and conversations are stored."""
    async with service.runtime.database.read() as session:
        messages = (await session.execute(select(func.count()).select_from(Message))).scalar_one()
        conversations = (await session.execute(select(func.count()).select_from(Conversation))).scalar_one()
    return messages, conversations


# Refusals are the bulk of the dialect's tests: they share one app per backend, not one per case.


@pytest.fixture(scope="module", params=BACKENDS)
def shared_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        return databases.sqlite_copy(template, tmp_path_factory.mktemp("polyai-refusals"))
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_service(shared_database_url: str) -> AsyncIterator[Service]:
    clock = FakeClock()
    app = create_app(make_settings(shared_database_url), clock=clock, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            yield Service(runtime=app.state.runtime, client=client, clock=clock)


@pytest_asyncio.fixture(loop_scope="module")
async def quiet_service(shared_service: Service) -> Service:
    """The shared service, freshly provisioned and with no messages or conversations stored."""
    if await counts(shared_service) != (0, 0):
        # Only on PostgreSQL, whose one test database the per-test `service` fixture also uses.
        await databases.truncate_all(shared_service.runtime.database.url)
    await shared_service.provision(standard_document())
    return shared_service
