"""Applying a provisioning file: create or update by id, so applying the same file twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents import service as agents
from reachout.carriers.base import CarrierKind
from reachout.events import service as events
from reachout.events.schemas import EndpointConfig
from reachout.phones.numbers import parse_e164
from reachout.provisioning.loader import ProvisioningError
from reachout.provisioning.schema import AccountSpec, NumberSpec, ProjectSpec, ProvisioningFile, UseCaseSpec
from reachout.tenancy import repository as tenancy
from reachout.tenancy.enums import DEFAULT_THROUGHPUT
from reachout.tenancy.keys import hash_secret, visible_prefix
from reachout.tenancy.models import Account, PhoneNumber, Project, UseCase


@dataclass(frozen=True)
class Applied:
    """What a provisioning run touched."""

    accounts: int
    projects: int
    numbers: int


async def apply(session: AsyncSession, document: ProvisioningFile, now: datetime) -> Applied:
    """Create or update every account, key, project and number in the file (the caller commits)."""
    projects = numbers = 0
    for pathway in document.pathways:
        await agents.save_pathway(session, pathway, now)
    for account in document.accounts:
        await _apply_account(session, account, now)
        for project in account.projects:
            await _apply_project(session, account, project, now)
            projects += 1
            numbers += len(project.numbers)
    return Applied(accounts=len(document.accounts), projects=projects, numbers=numbers)


async def _apply_account(session: AsyncSession, spec: AccountSpec, now: datetime) -> None:
    row = await tenancy.get_account(session, spec.id)
    if row is None:
        tenancy.add(session, Account(id=spec.id, name=spec.name or spec.id, created_at=now, updated_at=now))
    else:
        row.name, row.updated_at = spec.name or spec.id, now
    await session.flush()
    for secret in spec.api_keys:
        owner = await tenancy.key_owner(session, hash_secret(secret))
        if owner is not None and owner != spec.id:
            raise ProvisioningError(f"account '{spec.id}': an API key is already issued to another account")
    await tenancy.replace_api_keys(
        session, spec.id, {hash_secret(secret): visible_prefix(secret) for secret in spec.api_keys}, now
    )


async def _apply_project(
    session: AsyncSession, account: AccountSpec, spec: ProjectSpec, now: datetime
) -> None:
    account_id = account.id
    row = await tenancy.get_project(session, spec.id)
    if row is not None and row.account_id != account_id:
        raise ProvisioningError(f"project '{spec.id}' already belongs to another account")
    if spec.connector_id is not None:
        holder = await tenancy.project_owning_connector(session, spec.connector_id)
        if holder is not None and holder != spec.id:
            raise ProvisioningError(f"connector '{spec.connector_id}' already belongs to project '{holder}'")
    values: dict[str, Any] = {
        "connector_id": spec.connector_id,
        "environment": spec.environment.value,
        "rate_limit_requests": spec.rate_limit.requests,
        "rate_limit_seconds": spec.rate_limit.per_seconds,
        "agent": dict(spec.agent),
        "conversation_settings": spec.conversations.model_dump(mode="json"),
        "webhook_url": spec.webhook.url if spec.webhook else None,
        "webhook_secret": spec.webhook.secret if spec.webhook else None,
        "twilio_messaging_service_sid": spec.twilio.messaging_service_sid,
        "quiet_hours": spec.quiet_hours,
        "updated_at": now,
    }
    if row is None:
        tenancy.add(session, Project(id=spec.id, account_id=account_id, created_at=now, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()

    await tenancy.remove_numbers_except(session, spec.id, {n.number for n in spec.numbers})
    for number in spec.numbers:
        existing = await tenancy.get_number(session, number.number)
        if existing is not None and existing.project_id != spec.id:
            raise ProvisioningError(
                f"number {number.number} is already provisioned to project '{existing.project_id}'"
            )
        number_values: dict[str, Any] = {
            "carrier": number.carrier.value,
            "kind": number.kind.value,
            "environment": (number.environment or spec.environment).value,
            "capabilities": [c.value for c in number.capabilities],
            "throughput_mps": _throughput(number),
            "brand": f"{account_id}/{number.brand}" if number.brand else None,
            "brand_throughput_mps": account.brand_throughput(number.brand),
            "updated_at": now,
        }
        if existing is None:
            tenancy.add(
                session,
                PhoneNumber(number=number.number, project_id=spec.id, created_at=now, **number_values),
            )
        else:
            for name, value in number_values.items():
                setattr(existing, name, value)
    await session.flush()
    await _apply_use_cases(session, spec, now)
    await events.apply_endpoints(
        session,
        spec.id,
        [EndpointConfig(w.url, tuple(w.secrets), tuple(w.events)) for w in spec.webhooks],
        now,
    )


async def _apply_use_cases(session: AsyncSession, spec: ProjectSpec, now: datetime) -> None:
    await tenancy.delete_use_cases_except(session, spec.id, {str(u.id) for u in spec.use_cases}, now)
    for use_case in spec.use_cases:
        use_case_id = str(use_case.id)
        existing = await tenancy.get_use_case(session, use_case_id)
        if existing is not None and existing.project_id != spec.id:
            raise ProvisioningError(
                f"use case {use_case_id} already belongs to project '{existing.project_id}'"
            )
        values: dict[str, Any] = {
            "name": use_case.name,
            "active": use_case.active,
            "sender_pool": list(use_case.sender_pool),
            "sticky_sender": use_case.sticky_sender,
            "area_code_geomatch": use_case.area_code_geomatch,
            "campaign": None if use_case.campaign is None else use_case.campaign.value,
            "brand": use_case.brand.value,
            "allowed_countries": _allowed_countries(use_case),
            "twilio_messaging_service_sid": use_case.messaging_service_sid,
            "quiet_hours": use_case.quiet_hours,
            "replies": use_case.answered_by.value,
            "reply_agent": dict(use_case.replies) if isinstance(use_case.replies, dict) else None,
            "deleted_at": None,  # listed again: restored
            "updated_at": now,
        }
        if existing is None:
            tenancy.add(session, UseCase(id=use_case_id, project_id=spec.id, created_at=now, **values))
        else:
            for name, value in values.items():
                setattr(existing, name, value)
    await session.flush()


def _allowed_countries(use_case: UseCaseSpec) -> list[str]:
    """The listed countries, else those of the pool's own numbers (a sender's home country)."""
    if use_case.allowed_countries is not None:
        return sorted(set(use_case.allowed_countries))
    return sorted({region for n in use_case.sender_pool if (region := parse_e164(n).region) is not None})


def _throughput(number: NumberSpec) -> float | None:
    """A number's pace in segments per second; None for unpaced."""
    if number.throughput_mps == "unlimited":
        return None
    if number.throughput_mps is not None:
        return number.throughput_mps
    # The sandbox protects no real network, so it is unpaced unless a number asks to rehearse its pace.
    return None if number.carrier is CarrierKind.SANDBOX else DEFAULT_THROUGHPUT[number.kind]
