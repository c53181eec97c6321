"""Conversation shapes used across domains."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import uuid_utils

from reachout.agents.base import EndReason
from reachout.conversations.models import AnsweredBy, JobKind
from reachout.delivery.channels import Channel
from reachout.events.types import EventType
from reachout.kit.jobs.leases import Lease
from reachout.kit.records import EMPTY_MAPPING

CONVERSATION_ID = re.compile(r"convo_[0-9a-f]{24}")


def new_conversation_id() -> str:
    """`convo_` and 24 hex digits: a UUIDv7's timestamp and 44 more bits, time-ordered like message ids."""
    return "convo_" + uuid_utils.uuid7().hex[:24]


def could_be_conversation_id(text: str) -> bool:
    """Whether `text` has the shape of a conversation id; anything else names no conversation."""
    return CONVERSATION_ID.fullmatch(text) is not None


# The records of a batch's messages are NamedTuples (reachout.kit.records).
class SessionKey(NamedTuple):
    """What identifies a session: one user, one agent number, one channel, one project."""

    project_id: str
    channel: Channel
    agent_number: str
    user_number: str


class Opening(NamedTuple):
    """A conversation to open, superseding any open one with the same key."""

    id: str
    key: SessionKey
    metadata: Mapping[str, Any] = EMPTY_MAPPING
    agent: Mapping[str, Any] = EMPTY_MAPPING


class NewConversation(NamedTuple):
    """A conversation to open, with its key and agent; `ended_as`: one already superseded in its batch;
    `use_case_id`: the use case whose message the person's reply opened it with."""

    id: str
    key: SessionKey
    opened_at: datetime
    agent: dict[str, Any]
    metadata: Mapping[str, Any] = EMPTY_MAPPING
    ended_as: EndReason | None = None
    answered_by: AnsweredBy = AnsweredBy.AGENT
    use_case_id: str | None = None


@dataclass(frozen=True)
class LeasedJob:
    """A conversation job a worker holds under `lease`; `attempts` counts this one."""

    id: int
    conversation_id: str
    kind: JobKind
    attempts: int
    lease: Lease
    due_at: datetime | None = None  # when it was due, before the lease moved it


@dataclass(frozen=True)
class UsersSessions:
    """What a batch of greetings needs to know about its users' conversations in one project."""

    latest_agent: dict[str, str]  # user number -> agent number of their most recent conversation
    open_ids: dict[SessionKey, str]  # the open session of each key that has one


class ConversationSnapshot(NamedTuple):
    """A conversation's columns as its events show it."""

    id: str
    project_id: str
    channel: str
    agent_number: str
    user_number: str
    status: str
    end_reason: str | None
    answered_by: str
    use_case_id: str | None
    metadata: Mapping[str, Any]
    variables: Mapping[str, Any]
    opened_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None


class ConversationChange(NamedTuple):
    """Something that happened to a conversation, to record in the event log (`conversations.event_log`)."""

    type: EventType
    conversation_id: str
    occurred_at: datetime
    details: Mapping[str, Any] = EMPTY_MAPPING
