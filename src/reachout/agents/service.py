"""Agent use cases: keep provisioned pathways, and build the agent a conversation runs with."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents import repository
from reachout.agents.base import Agent, AgentError, AgentKind
from reachout.agents.pathway import PathwayAgent, PathwaySpec
from reachout.agents.registry import AgentRegistry


async def save_pathway(session: AsyncSession, spec: PathwaySpec, now: datetime) -> None:
    """Store a pathway version from the provisioning file."""
    await repository.save_pathway(
        session, spec.id, spec.version, spec.model_dump(mode="json", by_alias=True), now
    )


async def pathway_agent(session: AsyncSession, config: Mapping[str, Any], state: Mapping[str, Any]) -> Agent:
    """The pathway a setting names: its pinned version, the one the conversation started on, or the newest."""
    pathway_id = str(config["pathway"])
    version = config.get("version", state.get("version"))
    definition = await repository.pathway_definition(
        session, pathway_id, None if version is None else int(version)
    )
    if definition is None:
        wanted = "its newest version" if version is None else f"version {version}"
        raise AgentError(f"pathway '{pathway_id}' ({wanted}) is not provisioned")
    try:
        return PathwayAgent(PathwaySpec.model_validate(definition))
    except ValidationError as error:
        raise AgentError(
            f"pathway '{pathway_id}' is stored in a form this version cannot read: {error}"
        ) from None


def default_registry() -> AgentRegistry:
    """Every agent kind this build of reachout can run."""
    return AgentRegistry({AgentKind.PATHWAY: pathway_agent})
