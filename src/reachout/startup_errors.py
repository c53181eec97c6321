"""Start-up mistakes (a database that is missing or refuses the login, a busy port, a broken file) in a line
or two, where a traceback would bury them; anything else is a bug, and keeps its traceback."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from pydantic import ValidationError

from reachout.config import Settings
from reachout.db.engine import UnsupportedDatabaseURL, describe_database, sqlite_file
from reachout.provisioning.loader import ProvisioningError


class StartupMistake(Exception):
    """A mistake in how reachout was started, noticed by the command line itself; the message says which."""


class CannotListen(StartupMistake):
    """The server's address cannot be listened on (taken, not this machine's, not allowed)."""

    def __init__(self, address: str, error: OSError, option: str = "--port") -> None:
        reason = (error.strerror or str(error)).lower()
        if error.errno == errno.EADDRINUSE:
            reason += f": another server is using it; choose another {option}"
        super().__init__(f"cannot listen on {address}: {reason}")


def check_database_url(url: str) -> None:
    """Refuse, before anything connects, a URL reachout cannot open and a SQLite file it could not create."""
    path = sqlite_file(url)  # raises UnsupportedDatabaseURL
    if path is None or path.exists():
        return
    # Checked here because aiosqlite, failing to open the file, prints a stray thread traceback at exit.
    reason = _why_sqlite_cannot_create(path)
    if reason is not None:
        raise StartupMistake(f"cannot open {describe_database(url)}: {reason}")


def describe_startup_error(error: BaseException, database_url: str | None) -> str | None:
    """A short account of a known start-up mistake behind `error`; None for anything else (its traceback
    is worth reading: it is a bug)."""
    for cause in _causes(error):
        message = _describe(cause, database_url)
        if message is not None:
            return message
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    # SQLAlchemy keeps the driver's exception as `orig`, and the adapted one names it as its cause. Implicit
    # contexts are not followed: an exception raised while handling a known one is a bug of its own.
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for cause in (getattr(current, "orig", None), current.__cause__):
            if isinstance(cause, BaseException):
                pending.append(cause)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)


def _describe(error: BaseException, database_url: str | None) -> str | None:
    if isinstance(error, StartupMistake | ProvisioningError | UnsupportedDatabaseURL):
        return str(error)
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        # Only the setting and the rule: the value given may be a secret.
        return "\n".join(
            f"REACHOUT_{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
    database = _database(database_url)
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return f"{database} does not exist: create it, or set REACHOUT_DATABASE_URL to another"
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        return f"{database} refused the login: {error} (REACHOUT_DATABASE_URL)"
    if isinstance(error, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return f"{database} refused the connection: {error}"
    if isinstance(error, OSError) and _raised_in(error, "asyncpg"):
        return f"cannot reach {database}: {_network_reason(error)}"
    if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
        path = None if database_url is None else sqlite_file(database_url)
        reason = None if path is None else _why_sqlite_cannot_create(path)
        return f"cannot open {database}: {reason or 'unable to open the database file'}"
    return None


def _database(url: str | None) -> str:
    if url is None:
        return "the database"
    try:
        return describe_database(url)
    except UnsupportedDatabaseURL:
        return "the database"


def _raised_in(error: BaseException, package: str) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module == package or module.startswith(f"{package}."):
            return True
        traceback = traceback.tb_next
    return False


def _network_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running, on that port?)"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return (error.strerror or str(error)).lower()


def _why_sqlite_cannot_create(path: Path) -> str | None:
    directory = path.absolute().parent
    if not directory.is_dir():
        return f"the directory {directory} does not exist (REACHOUT_DATABASE_URL)"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"the directory {directory} is not writable"
    return None
