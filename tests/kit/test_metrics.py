"""Counting with a transaction: what it counted is added once it commits, and never if it does not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from reachout import logs
from reachout.db.engine import Database
from reachout.kit import metrics
from reachout.kit.after_commit import after_commit, log_after_commit
from reachout.messaging.tallies import error_code_label
from tests.support.streams import log_to_a_closed_stream


async def test_what_a_transaction_counts_is_added_once_it_commits(database: Database) -> None:
    ran: list[str] = []
    async with database.write.begin() as session:
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("first"))
        after_commit(session, lambda: ran.append("second"))
        assert ran == []  # not while the transaction (and SQLite's write lock) is held
    assert ran == ["first", "second"]


async def test_a_rolled_back_or_abandoned_transaction_counts_nothing(database: Database) -> None:
    ran: list[str] = []
    with pytest.raises(ValueError):
        async with database.write.begin() as session:
            after_commit(session, lambda: ran.append("rolled back"))
            raise ValueError("the batch failed")
    async with database.read() as session:
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("closed"))
    async with database.write() as session:  # one session, its next transaction committed
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("rolled back before"))
        await session.rollback()
        await session.execute(text("SELECT 1"))
        await session.commit()
    assert ran == []


async def test_a_counting_bug_does_not_undo_the_commit(database: Database) -> None:
    def broken() -> None:
        raise RuntimeError("a bug in counting")

    ran: list[str] = []
    async with database.write.begin() as session:
        after_commit(session, broken)
        after_commit(session, lambda: ran.append("after"))
    assert ran == ["after"]


def test_error_codes_outside_the_catalogue_share_one_label() -> None:
    assert [error_code_label(code) for code in (21211, 30006, 30036)] == ["21211", "30006", "30036"]
    assert error_code_label(47123) == "other"
    assert error_code_label(None) == "none"


def test_the_way_values_are_kept_is_chosen_before_the_first_instrument() -> None:
    metrics.instruments()
    with pytest.raises(RuntimeError):
        metrics.share_between_processes(None)
    assert metrics.shared_directory() is None


async def test_a_stderr_that_cannot_take_the_lines_does_not_undo_the_commit(
    database: Database, tmp_path: Path
) -> None:
    """Its lines are lost, but the caller hears that the transaction committed, and does not try it again."""
    log_to_a_closed_stream(tmp_path)
    ran: list[str] = []
    try:
        async with database.write.begin() as session:
            await session.execute(text("SELECT 1"))
            log_after_commit(session, logs.get_logger("test"), [(logging.INFO, "a line", {})])
            after_commit(session, lambda: ran.append("counted"))
    finally:
        structlog.reset_defaults()
    assert ran == ["counted"]
