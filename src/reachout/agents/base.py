"""The agent port: what carries a conversation on once the person answers.

An agent is given the conversation as it stands (`ConversationView`: the history, the metadata its opener
attached, the variables gathered so far and the agent's own state) and either the start of the conversation
or the person's new text, and returns the next `AgentTurn`: what to say (or nothing), the variables it
extracted, its new state, and whether the conversation ends.

Agents are pure with respect to storage: they never touch the database or send anything themselves. The
conversation service persists what they return and sends their reply through messaging, in one
transaction, so a turn is either wholly applied or retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol


class AgentKind(StrEnum):
    """The kinds of agent a project can be given; the key of the registry."""

    PATHWAY = "pathway"


class Speaker(StrEnum):
    """Who said a line of the conversation (Bland's `sender`)."""

    USER = "USER"
    AGENT = "AGENT"


@dataclass(frozen=True)
class Line:
    """One message of the conversation, as the agent sees it."""

    speaker: Speaker
    text: str
    at: datetime


@dataclass(frozen=True)
class ConversationView:
    """A conversation as an agent sees it. `history` is oldest first and includes the greeting."""

    conversation_id: str
    project_id: str
    channel: str
    agent_number: str
    user_number: str
    history: tuple[Line, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)  # the agent's own, as it last returned it


class EndReason(StrEnum):
    """Why a conversation ended: the agent's own reasons (the first two, all an agent may return) and the
    house's. Stored as a conversation's `end_reason` and in Bland's listing."""

    COMPLETED = "completed"  # the agent reached an end of its script
    HANDOFF = "handoff"  # the agent could not help; a person should take over
    INACTIVITY = "inactivity"  # no answer to the inactivity warning in time
    OPTED_OUT = "opted_out"  # the person texted STOP (or the carrier said they had)
    SUPERSEDED = "superseded"  # a new greeting to the same person on the same number
    AGENT_FAILED = "agent_failed"  # the agent failed every attempt; the fallback text was sent
    UNDELIVERABLE = "undeliverable"  # its greeting failed for good before the person texted


# The reasons an agent may give for ending a conversation; the others are the house's.
AgentEnd = Literal[EndReason.COMPLETED, EndReason.HANDOFF]


@dataclass(frozen=True)
class AgentTurn:
    """What an agent decided: a reply (None: stay silent), variables to merge, its new state, the end."""

    reply: str | None
    variables: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    end: AgentEnd | None = None


class AgentError(Exception):
    """The agent could not produce a turn (misconfigured, or its backend failed); the turn is retried."""


class Agent(Protocol):
    """A conversational agent. Both calls may be retried with the same input, so they must not keep state."""

    async def start(self, conversation: ConversationView) -> AgentTurn:
        """The conversation has opened (its greeting is the last line of history); usually no reply."""
        ...

    async def respond(self, conversation: ConversationView, text: str) -> AgentTurn:
        """The person said `text` (several texts in quick succession arrive joined by newlines)."""
        ...
