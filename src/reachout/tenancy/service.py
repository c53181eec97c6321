"""Tenancy use cases: who is calling, which project they mean, and whether they are within their rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.errors import ErrorCode, ReachoutError
from reachout.kit import gcra
from reachout.logs import note_account
from reachout.tenancy import repository
from reachout.tenancy.keys import WELL_KNOWN_KEYS, hash_secret, weakness
from reachout.tenancy.schemas import ProjectView, SenderLimit, SenderProfile, UseCaseView

K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """Remembers lookups for a few seconds; provisioning changes show up once an entry ages out.

    Concurrent misses of one key share a single load, so an expiring entry under load costs one query,
    not one per waiting request.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        # Freshness of a cache is not business time, so it reads the monotonic clock, not the injected one.
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            await asyncio.wait([pending])
            if not pending.cancelled() and pending.exception() is None:
                return pending.result()
            # The sharing load failed or its caller went away: this caller loads for itself.
        return await self._load(key, load)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException:
            future.cancel()
            raise
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
        future.set_result(value)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


class Directory:
    """Cached, read-only answers to "whose key is this" and "which project is this connector"."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._accounts: _TtlCache[str, str | None] = _TtlCache(ttl_seconds)
        self._projects: _TtlCache[str, ProjectView | None] = _TtlCache(ttl_seconds)
        self._use_cases: _TtlCache[str, tuple[ProjectView, UseCaseView] | None] = _TtlCache(ttl_seconds)
        self._carriers: _TtlCache[str, str | None] = _TtlCache(ttl_seconds)
        self._carriers_in_use: _TtlCache[None, frozenset[str]] = _TtlCache(ttl_seconds)
        self._project_carriers: _TtlCache[str, frozenset[str]] = _TtlCache(ttl_seconds)

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
        note_account(account_id)  # the request's access log line names the account, never the key
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

    async def use_case(self, account_id: str, use_case_id: str) -> tuple[ProjectView, UseCaseView]:
        """A use case the caller's account owns, with its project; one deleted, or another account's, is not
        found (so as not to reveal that it exists)."""
        found = await self._use_cases.get(
            use_case_id, lambda: self._read(_use_case_with_project, use_case_id)
        )
        if found is None or found[1].deleted or found[0].account_id != account_id:
            raise ReachoutError(ErrorCode.USE_CASE_NOT_FOUND, f"SMS use case '{use_case_id}' not found.")
        return found

    async def carrier_of_number(self, number: str) -> str | None:
        """The carrier a provisioned number sends through; None for a number no project has."""
        return await self._carriers.get(number, lambda: self._read(repository.carrier_of_number, number))

    async def carriers_beside(self, number: str) -> frozenset[str]:
        """The carriers of every number in the project that holds `number` (none for an unowned number)."""

        async def load() -> frozenset[str]:
            async with self._sessions() as session:
                return frozenset(await repository.carriers_beside(session, number))

        return await self._project_carriers.get(number, load)

    async def carrier_in_use(self, carrier: str) -> bool:
        """Whether some provisioned number sends through this carrier."""

        async def load() -> frozenset[str]:
            async with self._sessions() as session:
                return frozenset(await repository.carriers_in_use(session))

        return carrier in await self._carriers_in_use.get(None, load)

    def forget(self) -> None:
        """Drop every cached answer (after provisioning in this process)."""
        self._accounts.clear()
        self._projects.clear()
        self._use_cases.clear()
        self._carriers.clear()
        self._carriers_in_use.clear()
        self._project_carriers.clear()

    async def _read(self, query: Callable[[AsyncSession, str], Awaitable[V]], argument: str) -> V:
        async with self._sessions() as session:
            return await query(session, argument)


async def _use_case_with_project(
    session: AsyncSession, use_case_id: str
) -> tuple[ProjectView, UseCaseView] | None:
    use_case = (await repository.use_case_views(session, [use_case_id])).get(use_case_id)
    if use_case is None:
        return None
    project = await repository.project_by_id(session, use_case.project_id)
    return None if project is None else (project, use_case)


async def use_cases(session: AsyncSession, use_case_ids: Sequence[str]) -> dict[str, UseCaseView]:
    """Use cases by id, deleted ones included (uncached: for the dispatcher)."""
    return await repository.use_case_views(session, use_case_ids)


@dataclass(frozen=True)
class RateCharge:
    """One request to count against a project's rate limit."""

    project_id: str
    rate: gcra.Rate


class RateLimiter:
    """Counts requests against their projects' limits; the state is a row per project in the database.

    Every API process shares that row, so the limit is one limit however many processes serve a project.
    The limiter remembers the state it last wrote and stores the next one only if the row still holds it
    (compare and set): one statement per batch while this process is the only one charging a project. When
    another process got there first, it reads the row under a lock and decides again.
    """

    def __init__(self) -> None:
        self._last_written: dict[str, float] = {}

    async def charge(
        self, session: AsyncSession, charges: Sequence[RateCharge], now: datetime
    ) -> list[ReachoutError | None]:
        """Admit or refuse each request, in order; a refused one is not counted."""
        by_project: dict[str, list[RateCharge]] = {}
        for charge in charges:
            by_project.setdefault(charge.project_id, []).append(charge)
        verdicts: dict[str, list[ReachoutError | None]] = {}
        redo: list[str] = []
        for project_id, project_charges in sorted(by_project.items()):
            expected = self._last_written.get(project_id)
            if expected is None:
                redo.append(project_id)
                continue
            project_verdicts, new_state = _decide(project_charges, expected, now)
            new_state = expected if new_state is None else new_state
            if await repository.swap_rate_state(session, project_id, expected, new_state):
                verdicts[project_id] = project_verdicts
                self._last_written[project_id] = new_state
            else:
                redo.append(project_id)
        if redo:
            stored = await repository.lock_rate_states(session, redo)
            changed: dict[str, float] = {}
            for project_id in redo:
                previous = stored.get(project_id)
                verdicts[project_id], new_state = _decide(by_project[project_id], previous, now)
                if new_state is not None:  # None: no row, and every request refused
                    if new_state != previous:
                        changed[project_id] = new_state
                    self._last_written[project_id] = new_state
            await repository.save_rate_states(session, changed, set(stored))
        position = {project_id: iter(project_verdicts) for project_id, project_verdicts in verdicts.items()}
        return [next(position[charge.project_id]) for charge in charges]


def _decide(
    charges: Sequence[RateCharge], state: float | None, now: datetime
) -> tuple[list[ReachoutError | None], float | None]:
    """One project's verdicts, in order, and its state after them."""
    at = now.timestamp()
    verdicts: list[ReachoutError | None] = []
    for charge in charges:
        decision = gcra.decide(state, at, charge.rate)
        if decision.allowed:
            state = decision.new_tat
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
    return verdicts, state


@dataclass(frozen=True)
class Provisioned:
    """What is provisioned, counted (for the start-up line)."""

    projects: int
    numbers: int
    agents: int


async def provisioned(session: AsyncSession) -> Provisioned:
    """How many projects, numbers and agents are provisioned."""
    return Provisioned(*await repository.provisioned(session))


async def project(session: AsyncSession, project_id: str) -> ProjectView | None:
    """A project as sends and conversations need it (uncached: for the worker and inbound paths)."""
    return await repository.project_by_id(session, project_id)


async def project_for_number(session: AsyncSession, number: str) -> str | None:
    """The project a number is provisioned to, if any."""
    return await repository.project_for_number(session, number)


@dataclass(frozen=True)
class WeakKey:
    """An account that holds a key others could guess, and why (never the key itself)."""

    account_id: str
    reason: str


async def weak_keys(session: AsyncSession, provisioned: Mapping[str, Sequence[str]]) -> list[WeakKey]:
    """The weak keys among `provisioned` (account → keys, as a provisioning file lists them), and the
    well-known keys stored for any account (recognised by their hash), each account and reason once."""
    found = {
        WeakKey(account_id, reason)
        for account_id, keys in provisioned.items()
        for key in keys
        if (reason := weakness(key)) is not None
    }
    for key in WELL_KNOWN_KEYS:
        reason = weakness(key)
        assert reason is not None
        for account_id in await repository.accounts_with_key_hashes(session, [hash_secret(key)]):
            found.add(WeakKey(account_id, reason))
    return sorted(found, key=lambda weak: (weak.account_id, weak.reason))


async def use_cases_sending_from(session: AsyncSession, project_id: str, number: str) -> list[UseCaseView]:
    """The project's use cases (not deleted) whose sender pool holds this number."""
    return [u for u in await repository.live_use_cases_of(session, project_id) if number in u.sender_pool]


async def sender_profiles(session: AsyncSession, numbers: Sequence[str]) -> dict[str, SenderProfile]:
    """How each still-provisioned sender number sends: its carrier, its pace, its Messaging Service."""
    return await repository.sender_profiles(session, numbers)


async def sender_limits(session: AsyncSession) -> list[SenderLimit]:
    """The pace of every paced sender number, and its brand's cap."""
    return await repository.sender_limits(session)
