"""The per-project rate limit is one limit across processes, and costs one statement per batch when alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from reachout.db.engine import Database
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.clock import FakeClock
from reachout.kit.gcra import Rate
from reachout.tenancy.service import RateCharge, RateLimiter

PROJECT = "clinic"  # tests/support/provisioning.py
THREE_A_MINUTE = Rate(3, 60)


async def charge(database: Database, limiter: RateLimiter, clock: FakeClock, count: int = 1) -> list[bool]:
    """Charge `count` requests in one transaction; True for each one admitted."""
    async with database.write.begin() as session:
        verdicts = await limiter.charge(session, [RateCharge(PROJECT, THREE_A_MINUTE)] * count, clock.now())
    return [verdict is None for verdict in verdicts]


async def test_two_processes_share_one_limit(database: Database, clock: FakeClock) -> None:
    first, second = RateLimiter(), RateLimiter()  # each process has its own
    admitted = []
    for _ in range(3):
        admitted += await charge(database, first, clock)
        admitted += await charge(database, second, clock)  # leaves `first`'s memory of the row stale
    assert admitted == [True, True, True, False, False, False]
    clock.advance(20)  # one emission interval: room for exactly one more
    assert await charge(database, first, clock) == [True]
    assert await charge(database, second, clock) == [False]


async def test_a_refusal_says_when_to_retry(database: Database, clock: FakeClock) -> None:
    limiter = RateLimiter()
    assert await charge(database, limiter, clock, count=3) == [True, True, True]
    async with database.write.begin() as session:
        [refusal] = await limiter.charge(session, [RateCharge(PROJECT, THREE_A_MINUTE)], clock.now())
    assert isinstance(refusal, ReachoutError) and refusal.code is ErrorCode.RATE_LIMITED
    assert refusal.retry_after == pytest.approx(20)


async def test_a_rolled_back_charge_is_not_remembered(database: Database, clock: FakeClock) -> None:
    limiter = RateLimiter()
    assert await charge(database, limiter, clock, count=2) == [True, True]
    with pytest.raises(RuntimeError):
        async with database.write.begin() as session:
            await limiter.charge(session, [RateCharge(PROJECT, THREE_A_MINUTE)], clock.now())
            raise RuntimeError("the batch failed after charging")
    assert await charge(database, limiter, clock, count=2) == [True, False]


async def test_alone_a_batch_costs_one_statement(database: Database, clock: FakeClock) -> None:
    limiter = RateLimiter()
    await charge(database, limiter, clock)  # the first batch reads the row
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "rate_limit_states" in statement:
            statements.append(statement.split()[0])

    engine = database.writer_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert await charge(database, limiter, clock, count=2) == [True, True]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == ["UPDATE"]
