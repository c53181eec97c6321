"""All SQL of agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents.models import Pathway


async def save_pathway(
    session: AsyncSession, pathway_id: str, version: int, definition: dict[str, Any], now: datetime
) -> None:
    """Create or replace one version of a pathway."""
    row = await session.get(Pathway, (pathway_id, version))
    if row is None:
        session.add(Pathway(id=pathway_id, version=version, definition=definition, updated_at=now))
    else:
        row.definition, row.updated_at = definition, now
    await session.flush()


async def pathway_definition(
    session: AsyncSession, pathway_id: str, version: int | None
) -> dict[str, Any] | None:
    """A version of a pathway, or its newest when `version` is None."""
    statement = select(Pathway.definition).where(Pathway.id == pathway_id)
    if version is not None:
        statement = statement.where(Pathway.version == version)
    result = await session.execute(statement.order_by(Pathway.version.desc()).limit(1))
    return result.scalar_one_or_none()
