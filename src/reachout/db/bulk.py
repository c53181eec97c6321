"""UPDATE many rows by primary key in Core, one executemany per set of columns.

SQLAlchemy's ORM bulk update by primary key (`session.execute(update(Model), rows)`) does per-row
bookkeeping that cost the dispatcher and the status reports more than the statements themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "pk_"
_VALUE = "v_"  # a bound name must differ from the column it sets


async def update_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> None:
    """Set each row's columns on the row whose `key` column equals its `key` value; a row with nothing but
    its key sets nothing."""
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(name for name in row if name != key))
        if columns:  # an UPDATE must SET something
            by_columns.setdefault(columns, []).append(row)
    for columns, group in by_columns.items():
        statement = (
            update(table)
            .where(table.c[key] == bindparam(_KEY))
            .values({table.c[name]: bindparam(_VALUE + name) for name in columns})
        )
        params = [{_KEY: row[key], **{_VALUE + name: row[name] for name in columns}} for row in group]
        await session.execute(statement, params)
