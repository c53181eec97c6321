"""Many rows written with one statement: UPDATE by primary key, and INSERT (or upsert), one executemany each.

SQLAlchemy's ORM bulk update by primary key (`session.execute(update(Model), rows)`) does per-row
bookkeeping that cost the dispatcher and the status reports more than the statements themselves; and even
Core's executemany builds each row's parameters through its general machinery, all of it inside the write
transaction (SQLite's write lock is held from the first statement). Here a statement is compiled once per
shape and dialect, each value is converted by its column type's own bind processor, and the driver is handed
plain tuples: the status path's passes took about 40 % less time (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Insert, Table, Update, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from reachout.db.upsert import insert_for

_KEY = "pk_"
_VALUE = "v_"  # a bound name must differ from the column it sets

Converter = Callable[[Any], Any]


class _Prepared:
    """A statement compiled for one dialect: its SQL, the row keys of its positional parameters, and the
    converters of those that have one (by position)."""

    def __init__(self, sql: str, keys: Sequence[str], converters: Sequence[Converter | None]) -> None:
        self.sql = sql
        self._pick = itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
        self._converted = tuple((i, convert) for i, convert in enumerate(converters) if convert is not None)

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row's values in parameter order, converted for the driver."""
        values = self._pick(row)
        if not self._converted:
            return values
        converted = list(values)
        for i, convert in self._converted:
            if (value := converted[i]) is not None:
                converted[i] = convert(value)
        return tuple(converted)


_prepared: dict[tuple[Any, ...], _Prepared] = {}


def _prepare(
    key: tuple[Any, ...],
    build: Callable[[], Insert | Update],
    dialect: Dialect,
    row_key: Callable[[str], str] = lambda name: name,
) -> _Prepared:
    """The statement `build` makes, compiled once per `key` and dialect; `row_key` names the key of a row
    that holds each bound parameter's value (by default the parameter's own name)."""
    cache_key = (*key, dialect.name, dialect.driver)
    if (found := _prepared.get(cache_key)) is not None:
        return found
    compiled = build().compile(dialect=dialect)
    if not dialect.positional or compiled.positiontup is None:
        raise TypeError(f"{dialect.name}+{dialect.driver} does not take positional parameters")
    names = tuple(compiled.positiontup)
    converters = tuple(_converter(compiled.binds[name].type, dialect) for name in names)
    prepared = _prepared[cache_key] = _Prepared(compiled.string, [row_key(n) for n in names], converters)
    return prepared


def _converter(kind: TypeEngine[Any], dialect: Dialect) -> Converter | None:
    """The type's bind processor; a JSON column's answers an empty mapping without serializing it (most
    rows' details and variables are empty, and json.dumps costs more than the rest of the row)."""
    convert = kind.dialect_impl(dialect).bind_processor(dialect)
    if convert is None or not isinstance(kind, JSON):
        return convert
    empty = convert({})

    def json_value(value: Any) -> Any:
        return empty if type(value) is dict and not value else convert(value)

    return json_value


async def _run(session: AsyncSession, prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run a prepared statement once per row; how many rows it changed, or -1 where the driver cannot say."""
    connection = await session.connection()
    result = await connection.exec_driver_sql(prepared.sql, [prepared.values(row) for row in rows])
    return result.rowcount if connection.dialect.supports_sane_multi_rowcount else -1


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
    dialect = session.get_bind().dialect
    for columns, group in by_columns.items():

        def build(columns: tuple[str, ...] = columns) -> Update:
            return (
                update(table)
                .where(table.c[key] == bindparam(_KEY))
                .values({table.c[name]: bindparam(_VALUE + name) for name in columns})
            )

        prepared = _prepare(("update", table.name, key, columns), build, dialect, _row_key(key))
        await _run(session, prepared, group)


def _row_key(key: str) -> Callable[[str], str]:
    """Where an UPDATE's bound parameter is in the row: the key column, or the column it sets."""
    return lambda name: key if name == _KEY else name.removeprefix(_VALUE)


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on_conflict: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> int:
    """Insert rows that all give the same columns; returns how many went in, or -1 where the driver cannot
    count an executemany (asyncpg).

    With `on_conflict` (the columns of a unique key), a row whose key is taken is skipped, or, with
    `replace`, sets those columns of the row that holds it. A column left out must have no Python-side
    default (it would be skipped here), only the database's own.
    """
    if not rows:
        return 0
    columns = tuple(rows[0])

    def build() -> Insert:
        skipped = [c.name for c in table.columns if c.name not in columns and c.default is not None]
        if skipped:
            raise TypeError(f"insert_rows into {table.name} must give {', '.join(skipped)}")
        values: dict[Any, Any] = {table.c[name]: bindparam(name) for name in columns}
        if not on_conflict:
            return insert(table).values(values)
        statement = insert_for(session, table).values(values)
        if not replace:
            return statement.on_conflict_do_nothing(index_elements=list(on_conflict))
        return statement.on_conflict_do_update(
            index_elements=list(on_conflict), set_={name: statement.excluded[name] for name in replace}
        )

    key = ("insert", table.name, columns, tuple(on_conflict), tuple(replace))
    return await _run(session, _prepare(key, build, session.get_bind().dialect), rows)
