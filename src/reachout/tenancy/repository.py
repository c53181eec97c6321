"""All SQL of tenancy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.kit.gcra import Rate
from reachout.tenancy.enums import (
    BrandStatus,
    CampaignStatus,
    Capability,
    Environment,
    NumberKind,
    UseCaseReplies,
)
from reachout.tenancy.models import Account, ApiKey, PhoneNumber, Project, RateLimitState, UseCase
from reachout.tenancy.schemas import ProjectView, SenderLimit, SenderNumber, SenderProfile, UseCaseView
from reachout.tenancy.settings import ConversationSettings


async def account_for_key_hash(session: AsyncSession, key_hash: str) -> str | None:
    """The account owning a key, by the key's hash."""
    result = await session.execute(select(ApiKey.account_id).where(ApiKey.key_hash == key_hash))
    return result.scalar_one_or_none()


async def accounts_with_key_hashes(session: AsyncSession, key_hashes: Iterable[str]) -> set[str]:
    """The accounts holding any of these keys, by the keys' hashes."""
    wanted = sorted(set(key_hashes))
    if not wanted:
        return set()
    result = await session.execute(select(ApiKey.account_id).where(ApiKey.key_hash.in_(wanted)))
    return set(result.scalars())


async def project_by_connector(session: AsyncSession, connector_id: str) -> ProjectView | None:
    """A project, with its numbers, by its connector id."""
    project = (
        await session.execute(select(Project).where(Project.connector_id == connector_id))
    ).scalar_one_or_none()
    return None if project is None else await _view(session, project)


async def project_by_id(session: AsyncSession, project_id: str) -> ProjectView | None:
    """A project, with its numbers, by its id."""
    project = await session.get(Project, project_id)
    return None if project is None else await _view(session, project)


async def _view(session: AsyncSession, project: Project) -> ProjectView:
    numbers = (
        await session.execute(
            select(PhoneNumber).where(PhoneNumber.project_id == project.id).order_by(PhoneNumber.number)
        )
    ).scalars()
    return ProjectView(
        id=project.id,
        account_id=project.account_id,
        connector_id=project.connector_id,
        environment=Environment(project.environment),
        rate_limit=Rate(count=project.rate_limit_requests, per_seconds=project.rate_limit_seconds),
        agent=dict(project.agent or {}),
        conversations=ConversationSettings.model_validate(project.conversation_settings or {}),
        numbers=tuple(_sender(n) for n in numbers),
        quiet_hours=project.quiet_hours,
    )


async def use_case_views(session: AsyncSession, use_case_ids: Iterable[str]) -> dict[str, UseCaseView]:
    """Use cases by id, deleted ones included (marked so)."""
    wanted = set(use_case_ids)
    if not wanted:
        return {}
    rows = (await session.execute(select(UseCase).where(UseCase.id.in_(wanted)))).scalars()
    return {row.id: _use_case_view(row) for row in rows}


async def live_use_cases_of(session: AsyncSession, project_id: str) -> list[UseCaseView]:
    """A project's use cases that are not deleted, in id order."""
    rows = (
        await session.execute(
            select(UseCase)
            .where(UseCase.project_id == project_id, UseCase.deleted_at.is_(None))
            .order_by(UseCase.id)
        )
    ).scalars()
    return [_use_case_view(row) for row in rows]


def _use_case_view(row: UseCase) -> UseCaseView:
    return UseCaseView(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        active=row.active,
        deleted=row.deleted_at is not None,
        sender_pool=tuple(row.sender_pool),
        sticky_sender=row.sticky_sender,
        area_code_geomatch=row.area_code_geomatch,
        campaign=None if row.campaign is None else CampaignStatus(row.campaign),
        brand=BrandStatus(row.brand),
        allowed_countries=frozenset(row.allowed_countries),
        messaging_service_sid=row.twilio_messaging_service_sid,
        quiet_hours=row.quiet_hours,
        replies=UseCaseReplies(row.replies),
        own_agent=dict(row.reply_agent or {}),
    )


def _sender(row: PhoneNumber) -> SenderNumber:
    return SenderNumber(
        number=row.number,
        carrier=row.carrier,
        kind=NumberKind(row.kind),
        environment=Environment(row.environment),
        capabilities=frozenset(Capability(c) for c in row.capabilities),
        throughput_mps=row.throughput_mps,
    )


async def sender_profiles(session: AsyncSession, numbers: Iterable[str]) -> dict[str, SenderProfile]:
    """The carrier, pace and Messaging Service of each of these sender numbers that is provisioned."""
    wanted = set(numbers)
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            PhoneNumber.number,
            PhoneNumber.carrier,
            PhoneNumber.throughput_mps,
            PhoneNumber.brand,
            PhoneNumber.brand_throughput_mps,
            Project.twilio_messaging_service_sid,
        )
        .join(Project, Project.id == PhoneNumber.project_id)
        .where(PhoneNumber.number.in_(wanted))
    )
    return {
        row.number: SenderProfile(
            number=row.number,
            carrier=row.carrier,
            throughput_mps=row.throughput_mps,
            brand=row.brand,
            brand_throughput_mps=row.brand_throughput_mps,
            messaging_service_sid=row.twilio_messaging_service_sid,
        )
        for row in rows
    }


async def sender_limits(session: AsyncSession) -> list[SenderLimit]:
    """Every provisioned number that is paced or under a brand's cap (as many rows as numbers provisioned)."""
    rows = await session.execute(
        select(
            PhoneNumber.project_id,
            PhoneNumber.number,
            PhoneNumber.throughput_mps,
            PhoneNumber.brand,
            PhoneNumber.brand_throughput_mps,
        )
        .where(or_(PhoneNumber.throughput_mps.is_not(None), PhoneNumber.brand_throughput_mps.is_not(None)))
        .order_by(PhoneNumber.number)
    )
    return [SenderLimit(*row) for row in rows]


async def project_for_number(session: AsyncSession, number: str) -> str | None:
    """The project a number is provisioned to."""
    result = await session.execute(select(PhoneNumber.project_id).where(PhoneNumber.number == number))
    return result.scalar_one_or_none()


async def carrier_of_number(session: AsyncSession, number: str) -> str | None:
    """The carrier a provisioned number sends through; None for a number no project has."""
    result = await session.execute(select(PhoneNumber.carrier).where(PhoneNumber.number == number))
    return result.scalar_one_or_none()


async def carriers_beside(session: AsyncSession, number: str) -> set[str]:
    """The carriers of every number in the project that holds `number` (none for a number no project has)."""
    owner = select(PhoneNumber.project_id).where(PhoneNumber.number == number).scalar_subquery()
    result = await session.execute(
        select(PhoneNumber.carrier).where(PhoneNumber.project_id == owner).distinct()
    )
    return set(result.scalars())


async def carriers_in_use(session: AsyncSession) -> set[str]:
    """Every carrier some provisioned number sends through."""
    return set((await session.execute(select(PhoneNumber.carrier).distinct())).scalars())


async def provisioned(session: AsyncSession) -> tuple[int, int, int]:
    """How many projects, numbers and agents (projects whose `agent:` names one) are provisioned."""
    agents = [agent for agent in (await session.execute(select(Project.agent))).scalars() if agent]
    numbers = (await session.execute(select(func.count()).select_from(PhoneNumber))).scalar_one()
    projects = (await session.execute(select(func.count()).select_from(Project))).scalar_one()
    return int(projects), int(numbers), len(agents)


async def lock_rate_states(session: AsyncSession, project_ids: Sequence[str]) -> dict[str, float]:
    """The rate-limit state of each project, locked until the transaction ends."""
    result = await session.execute(
        select(RateLimitState.project_id, RateLimitState.theoretical_arrival)
        .where(RateLimitState.project_id.in_(project_ids))
        .with_for_update()
    )
    return {project_id: tat for project_id, tat in result}


async def swap_rate_state(session: AsyncSession, project_id: str, expected: float, new: float) -> bool:
    """Store a project's new state if its row still holds `expected` (compare and set).

    A row another transaction holds is waited for, then compared with what that transaction committed.
    """
    result = await session.execute(
        _SWAP_RATE_STATE, {"project": project_id, "expected": expected, "new": new}
    )
    return cast(CursorResult[Any], result).rowcount == 1


# Built once: every accept batch runs it.
_SWAP_RATE_STATE = (
    update(RateLimitState)
    .where(
        RateLimitState.project_id == bindparam("project"),  # a column's own name is reserved in an UPDATE
        RateLimitState.theoretical_arrival == bindparam("expected"),
    )
    .values(theoretical_arrival=bindparam("new"))
    .execution_options(synchronize_session=False)
)


async def save_rate_states(session: AsyncSession, states: dict[str, float], existing: set[str]) -> None:
    """Store new rate-limit states (rows in `existing` are updated, the rest inserted)."""
    for project_id, tat in states.items():
        if project_id in existing:
            await session.execute(
                update(RateLimitState)
                .where(RateLimitState.project_id == project_id)
                .values(theoretical_arrival=tat)
                .execution_options(synchronize_session=False)
            )
        else:
            session.add(RateLimitState(project_id=project_id, theoretical_arrival=tat))
    await session.flush()


# --- provisioning -----------------------------------------------------------------------------------------


async def get_account(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def get_project(session: AsyncSession, project_id: str) -> Project | None:
    return await session.get(Project, project_id)


async def project_owning_connector(session: AsyncSession, connector_id: str) -> str | None:
    result = await session.execute(select(Project.id).where(Project.connector_id == connector_id))
    return result.scalar_one_or_none()


async def get_number(session: AsyncSession, number: str) -> PhoneNumber | None:
    return await session.get(PhoneNumber, number)


async def replace_api_keys(
    session: AsyncSession, account_id: str, keys: dict[str, str], now: datetime
) -> None:
    """Make the account's keys exactly `keys` (hash → prefix); a key taken off the list stops working."""
    current = set(
        (await session.execute(select(ApiKey.key_hash).where(ApiKey.account_id == account_id))).scalars()
    )
    stale = current - keys.keys()
    if stale:
        await session.execute(delete(ApiKey).where(ApiKey.key_hash.in_(stale)))
    for key_hash, prefix in keys.items():
        if key_hash not in current:
            session.add(ApiKey(key_hash=key_hash, account_id=account_id, prefix=prefix, created_at=now))


async def key_owner(session: AsyncSession, key_hash: str) -> str | None:
    return await account_for_key_hash(session, key_hash)


async def get_use_case(session: AsyncSession, use_case_id: str) -> UseCase | None:
    return await session.get(UseCase, use_case_id)


async def delete_use_cases_except(
    session: AsyncSession, project_id: str, keep: set[str], now: datetime
) -> None:
    """Mark the project's use cases that are no longer listed deleted (they are kept, for their messages)."""
    statement = update(UseCase).where(UseCase.project_id == project_id, UseCase.deleted_at.is_(None))
    if keep:
        statement = statement.where(UseCase.id.not_in(keep))
    await session.execute(
        statement.values(deleted_at=now, updated_at=now).execution_options(synchronize_session=False)
    )


async def remove_numbers_except(session: AsyncSession, project_id: str, keep: set[str]) -> None:
    """Unprovision the project's numbers that are no longer listed."""
    statement = delete(PhoneNumber).where(PhoneNumber.project_id == project_id)
    if keep:
        statement = statement.where(PhoneNumber.number.not_in(keep))
    await session.execute(statement)


def add(session: AsyncSession, row: Account | Project | PhoneNumber | UseCase) -> None:
    session.add(row)
