"""Conversation shapes used across domains."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any


def new_conversation_id() -> str:
    """`convo_` and 24 hex digits."""
    return "convo_" + secrets.token_hex(12)


@dataclass(frozen=True)
class SessionKey:
    """What identifies a session: one user, one agent number, one channel, one project."""

    project_id: str
    channel: str
    agent_number: str
    user_number: str


@dataclass(frozen=True)
class Opening:
    """A conversation to open, superseding any open one with the same key."""

    id: str
    key: SessionKey
    metadata: dict[str, Any] = field(default_factory=dict)
