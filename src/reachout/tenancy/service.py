"""Tenancy use cases: who is calling, which project they mean, and whether they are within their rate."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.errors import ErrorCode, ReachoutError
from reachout.kit import gcra
from reachout.tenancy import repository
from reachout.tenancy.keys import hash_secret
from reachout.tenancy.schemas import ProjectView

K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """Remembers lookups for a few seconds; provisioning changes show up once an entry ages out."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        # Freshness of a cache is not business time, so it reads the monotonic clock, not the injected one.
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


class Directory:
    """Cached, read-only answers to "whose key is this" and "which project is this connector"."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._accounts: _TtlCache[str, str | None] = _TtlCache(ttl_seconds)
        self._projects: _TtlCache[str, ProjectView | None] = _TtlCache(ttl_seconds)

    async def authenticate(self, secret: str | None) -> str:
        """The account id an API key belongs to; refuses a missing or unknown key."""
        if not secret:
            raise ReachoutError(ErrorCode.UNAUTHENTICATED, "Missing API key.")
        key_hash = hash_secret(secret)
        account_id = await self._accounts.get(
            key_hash, lambda: self._read(repository.account_for_key_hash, key_hash)
        )
        if account_id is None:
            raise ReachoutError(ErrorCode.UNAUTHENTICATED, "Invalid API key.")
        return account_id

    async def project_for_connector(self, account_id: str, connector_id: str) -> ProjectView:
        """The project behind a connector, if the caller's account owns it."""
        project = await self._projects.get(
            connector_id, lambda: self._read(repository.project_by_connector, connector_id)
        )
        if project is None:
            raise ReachoutError(ErrorCode.CONNECTOR_NOT_FOUND, f"Connector '{connector_id}' not found.")
        if project.account_id != account_id:
            raise ReachoutError(
                ErrorCode.FORBIDDEN, "The API key's account does not match the connector's account."
            )
        return project

    def forget(self) -> None:
        """Drop every cached answer (after provisioning in this process)."""
        self._accounts.clear()
        self._projects.clear()

    async def _read(self, query: Callable[[AsyncSession, str], Awaitable[V]], argument: str) -> V:
        async with self._sessions() as session:
            return await query(session, argument)


@dataclass(frozen=True)
class RateCharge:
    """One request to count against a project's rate limit."""

    project_id: str
    rate: gcra.Rate


async def charge_rate_limits(
    session: AsyncSession, charges: Sequence[RateCharge], now: datetime
) -> list[ReachoutError | None]:
    """Count requests against their projects' limits, in order; a refused one is not counted.

    The state is a row per project, locked for the transaction, so every API process shares one limit.
    """
    if not charges:
        return []
    project_ids = sorted({c.project_id for c in charges})
    stored = await repository.lock_rate_states(session, project_ids)
    states: dict[str, float | None] = {pid: stored.get(pid) for pid in project_ids}
    at = now.timestamp()
    verdicts: list[ReachoutError | None] = []
    for charge in charges:
        decision = gcra.decide(states[charge.project_id], at, charge.rate)
        if decision.allowed:
            states[charge.project_id] = decision.new_tat
            verdicts.append(None)
        else:
            verdicts.append(
                ReachoutError(
                    ErrorCode.RATE_LIMITED,
                    f"Rate limit of {charge.rate.count:g} requests per {charge.rate.per_seconds:g} s "
                    "exceeded for this project; retry later.",
                    retry_after=decision.retry_after,
                )
            )
    changed = {pid: tat for pid, tat in states.items() if tat is not None and tat != stored.get(pid)}
    await repository.save_rate_states(session, changed, set(stored))
    return verdicts


async def project_for_number(session: AsyncSession, number: str) -> str | None:
    """The project a number is provisioned to, if any."""
    return await repository.project_for_number(session, number)


async def sender_carriers(session: AsyncSession, numbers: Sequence[str]) -> dict[str, str]:
    """The carrier each still-provisioned sender number sends through."""
    return await repository.sender_carriers(session, numbers)
