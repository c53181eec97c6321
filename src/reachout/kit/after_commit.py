"""Work to do once a session's transaction has committed (log lines, metric counts); never if it rolls back.

A domain step inside a write transaction says what it did as it goes; the line is written after COMMIT, so
formatting it never lengthens the hold on the rows (on SQLite, on the one write lock), and a step whose
transaction rolled back is never logged as done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy.event import listens_for
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from structlog.typing import FilteringBoundLogger

from reachout import logs
from reachout.logs import get_logger

log = get_logger("kit")

_PENDING = "reachout.after_commit"

Action = Callable[[], object]
LogLine = tuple[int, str, Mapping[str, Any]]
"""A line to write: its level, its event and its fields."""


def after_commit(session: AsyncSession | Session, action: Action) -> None:
    """Run `action` once the session's current transaction commits; drop it if the transaction rolls back."""
    pending: list[Action] = session.info.setdefault(_PENDING, [])
    pending.append(action)


def log_after_commit(
    session: AsyncSession | Session, logger: FilteringBoundLogger, lines: Sequence[LogLine]
) -> None:
    """Write these lines once the transaction commits (the caller has checked their levels are enabled)."""
    if lines:
        after_commit(session, partial(_write, logger, lines))


def _write(logger: FilteringBoundLogger, lines: Sequence[LogLine]) -> None:
    bound = logs.bound(logger)
    for level, event, fields in lines:
        bound.log(level, event, **fields)


@listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    actions: list[Action] = session.info.pop(_PENDING, [])
    with logs.batch():  # the transaction's lines in one write
        for action in actions:
            try:
                action()
            except Exception:
                # The transaction has committed: its caller must hear so, not of a log line that failed.
                log.exception("an action after a commit failed")


@listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction: what it did not commit never happened
        session.info.pop(_PENDING, None)
