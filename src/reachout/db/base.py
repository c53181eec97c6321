"""Declarative base shared by every domain's tables: one naming convention, UTC timestamps everywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, Table, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which has no zones) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every value must be stored in one zone and one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the two steps above plus SQLAlchemy's own text conversion, fused into one call each way:
    # every status report, send result and accept writes several timestamps inside the write lock.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_datetime


# The last value converted, and its text: a batch writes one `now` on every row it touches (a report's time,
# `updated_at`), the same object each time. One tuple, swapped whole, so threads never see half of a pair.
_LAST_TEXT: tuple[datetime | None, str | None] = (None, None)


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores it: UTC, in SQLAlchemy's text format (always six decimals)."""
    global _LAST_TEXT
    if value is None:
        return None
    last, text = _LAST_TEXT
    if value is last:
        return text
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
    _LAST_TEXT = (value, text)
    return text


def _sqlite_datetime(value: str | None) -> datetime | None:
    """A timestamp SQLite stored as text (in UTC), as an aware datetime."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Base for all reachout tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for bulk statements that need no ORM bookkeeping."""
    return Base.metadata.tables[model.__tablename__]
