"""Read-only views of tenancy, as the rest of reachout sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reachout.kit.gcra import Rate
from reachout.tenancy.enums import Capability, Environment, NumberKind
from reachout.tenancy.settings import ConversationSettings


@dataclass(frozen=True)
class SenderNumber:
    """A number a project may send from."""

    number: str
    carrier: str
    kind: NumberKind
    environment: Environment
    capabilities: frozenset[Capability]
    throughput_mps: float | None


@dataclass(frozen=True)
class SenderProfile:
    """What the dispatcher needs about a sender number: its carrier, its pace and how it sends."""

    number: str
    carrier: str
    throughput_mps: float | None
    brand: str | None = None
    brand_throughput_mps: float | None = None
    messaging_service_sid: str | None = None


@dataclass(frozen=True)
class ProjectView:
    """A project with what a send needs to know about it."""

    id: str
    account_id: str
    connector_id: str | None
    environment: Environment
    rate_limit: Rate
    agent: dict[str, Any]
    numbers: tuple[SenderNumber, ...]
    conversations: ConversationSettings = field(default_factory=ConversationSettings)

    def senders_for(self, environment: Environment, capability: Capability) -> tuple[SenderNumber, ...]:
        """The numbers of one environment able to do one thing, in a stable order."""
        return tuple(n for n in self.numbers if n.environment is environment and capability in n.capabilities)
