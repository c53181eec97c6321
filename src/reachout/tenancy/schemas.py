"""Read-only views of tenancy, as the rest of reachout sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reachout.kit.gcra import Rate
from reachout.tenancy.enums import (
    BrandStatus,
    CampaignStatus,
    Capability,
    Environment,
    NumberKind,
    UseCaseReplies,
)
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
class SenderLimit:
    """A paced sender number's limits in message segments per second: its own, and its brand's cap."""

    project_id: str
    number: str
    throughput_mps: float | None
    brand: str | None
    brand_throughput_mps: float | None


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
    quiet_hours: bool = False  # first messages wait for the recipient's sending window

    def senders_for(self, environment: Environment, capability: Capability) -> tuple[SenderNumber, ...]:
        """The numbers of one environment able to do one thing, in a stable order."""
        return tuple(n for n in self.numbers if n.environment is environment and capability in n.capabilities)


@dataclass(frozen=True)
class UseCaseView:
    """An SMS use case as a send through it needs to know it: its pool, policies and registrations."""

    id: str
    project_id: str
    name: str
    active: bool
    deleted: bool
    sender_pool: tuple[str, ...]
    sticky_sender: bool
    area_code_geomatch: bool
    campaign: CampaignStatus | None
    brand: BrandStatus
    allowed_countries: frozenset[str]
    messaging_service_sid: str | None
    quiet_hours: bool | None  # None: as its project says
    replies: UseCaseReplies = UseCaseReplies.NONE
    own_agent: dict[str, Any] = field(default_factory=dict)  # the agent setting `replies: own` runs

    def reply_agent(self, project: ProjectView) -> dict[str, Any] | None:
        """The agent setting that answers replies to its messages; None when nobody does."""
        if self.replies is UseCaseReplies.OWN:
            return dict(self.own_agent)
        return dict(project.agent) if self.replies is UseCaseReplies.PROJECT else None

    def holds_for_quiet_hours(self, project: ProjectView) -> bool:
        """Whether its first messages wait for the recipient's sending window."""
        return project.quiet_hours if self.quiet_hours is None else self.quiet_hours
