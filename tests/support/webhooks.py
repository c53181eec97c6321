"""A project told of its events at a local receiver's endpoint, and a clock its timestamps verify against
(a plugin: `receiver`, and `webhooked`, the chat project delivering to it; a module that uses them makes its
`clock` fixture `near_real_clock()`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reachout.kit.clock import FakeClock
from tests.support.chat import Chat, ScriptedAgent, chat_on, project_document
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def near_real_clock() -> FakeClock:
    """Three minutes behind the real clock: a receiver checks each `webhook-timestamp` against it (within
    five minutes, as receivers do), and so the schedule's first three attempts (at once, 5 s, 5 min ± 20 %)
    are all stamped within its tolerance."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3))


def hooked_document(url: str, **endpoint: Any) -> dict[str, Any]:
    """The chat project (its agent answers), told of its events at `url`."""
    document = project_document()
    document["accounts"][0]["projects"][0]["webhooks"] = [{"url": url, "secret": SECRET, **endpoint}]
    return document


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A Standard Webhooks receiver on 127.0.0.1 that verifies with SECRET."""
    async with WebhookReceiver(SECRET) as started:
        yield started


@pytest.fixture
async def webhooked(
    database_url: str, clock: FakeClock, agent: ScriptedAgent, receiver: WebhookReceiver
) -> AsyncIterator[Chat]:
    """The chat project, its events delivered to `receiver` (on loopback, which the setting allows)."""
    async with chat_on(
        database_url, clock, agent, hooked_document(receiver.url), webhooks_allow_private=True
    ) as chat:
        yield chat
