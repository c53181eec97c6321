"""Group commit: one transaction for concurrent commands, answers only after commit, refusals kept apart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.engine import open_database
from reachout.db.group_commit import CONFLICT_RETRIES, GroupCommitter
from reachout.errors import ErrorCode, ReachoutError


@pytest.fixture
async def database(database_url: str):  # type: ignore[no-untyped-def]
    db = open_database(database_url)
    async with db.write.begin() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS gc_items (name VARCHAR(40) PRIMARY KEY)"))
        await session.execute(text("DELETE FROM gc_items"))
    yield db
    async with db.write.begin() as session:
        await session.execute(text("DROP TABLE gc_items"))
    await db.dispose()


async def names(database) -> list[str]:  # type: ignore[no-untyped-def]
    async with database.read() as session:
        return sorted((await session.execute(text("SELECT name FROM gc_items"))).scalars())


class Recorder:
    """A batch function that inserts names, refuses names starting with '!' and crashes on 'boom'."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, session: AsyncSession, commands: Sequence[str]) -> list[str | ReachoutError]:
        self.batches.append(list(commands))
        outcomes: list[str | ReachoutError] = []
        for name in commands:
            if name.startswith("!"):
                outcomes.append(ReachoutError(ErrorCode.INVALID_REQUEST, f"refused {name}"))
                continue
            if name == "boom":
                raise RuntimeError("the database went away")
            await session.execute(text("INSERT INTO gc_items (name) VALUES (:n)"), {"n": name})
            outcomes.append(name.upper())
        return outcomes


async def test_concurrent_commands_share_transactions_and_each_gets_its_own_answer(database) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, recorder, max_batch=50)
    results = await asyncio.gather(*(committer.submit(f"item{n}") for n in range(40)))
    assert results == [f"ITEM{n}" for n in range(40)]
    assert len(recorder.batches) < 40, "commands arriving together were committed together"
    assert sum(len(b) for b in recorder.batches) == 40
    assert len(await names(database)) == 40
    await committer.close()


async def test_max_batch_bounds_a_transaction(database) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, recorder, max_batch=7)
    await asyncio.gather(*(committer.submit(f"n{n}") for n in range(30)))
    assert max(len(b) for b in recorder.batches) <= 7
    await committer.close()


async def test_a_refusal_reaches_only_its_caller(database) -> None:  # type: ignore[no-untyped-def]
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, Recorder(), max_batch=50)
    outcomes = await asyncio.gather(
        committer.submit("a"), committer.submit("!b"), committer.submit("c"), return_exceptions=True
    )
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ReachoutError) and outcomes[1].code is ErrorCode.INVALID_REQUEST
    assert await names(database) == ["a", "c"]
    await committer.close()


async def test_a_failing_command_does_not_fail_its_neighbours(database) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, recorder, max_batch=50)
    outcomes = await asyncio.gather(
        committer.submit("x"), committer.submit("boom"), committer.submit("y"), return_exceptions=True
    )
    assert outcomes[0] == "X" and outcomes[2] == "Y"
    assert isinstance(outcomes[1], RuntimeError)
    assert await names(database) == ["x", "y"], "the failed batch left nothing behind; the retries committed"
    await committer.close()


async def test_nothing_is_answered_before_its_commit(database) -> None:  # type: ignore[no-untyped-def]
    seen_by_other_connection: list[list[str]] = []

    async def batch(session: AsyncSession, commands: Sequence[str]) -> list[str | ReachoutError]:
        for name in commands:
            await session.execute(text("INSERT INTO gc_items (name) VALUES (:n)"), {"n": name})
        return list(commands)

    committer: GroupCommitter[str, str] = GroupCommitter(database.write, batch, max_batch=50)
    for name in ("p", "q"):
        await committer.submit(name)
        seen_by_other_connection.append(await names(database))
    assert seen_by_other_connection == [["p"], ["p", "q"]]
    await committer.close()


class ConflictOnce:
    """A batch function whose first transaction loses a race: a conflicting row was committed meanwhile."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.attempts = 0

    async def __call__(self, session: AsyncSession, commands: Sequence[str]) -> list[str | ReachoutError]:
        self.attempts += 1
        if self.attempts <= self.conflicts:
            raise IntegrityError(
                "INSERT ...", {}, Exception("duplicate key value violates unique constraint")
            )
        return [c.upper() for c in commands]


async def test_a_lone_command_that_lost_a_race_is_decided_again(database) -> None:  # type: ignore[no-untyped-def]
    work = ConflictOnce(conflicts=1)
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, work, max_batch=50)
    assert await committer.submit("greeting") == "GREETING"
    assert work.attempts == 2


async def test_a_conflict_that_persists_is_raised(database) -> None:  # type: ignore[no-untyped-def]
    work = ConflictOnce(conflicts=100)
    committer: GroupCommitter[str, str] = GroupCommitter(database.write, work, max_batch=50)
    with pytest.raises(IntegrityError):
        await committer.submit("greeting")
    assert work.attempts == 1 + CONFLICT_RETRIES
