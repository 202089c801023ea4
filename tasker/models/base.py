"""Declarative base, shared column types and timestamp mixin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")

#: 64-bit ids on PostgreSQL; INTEGER on SQLite so the primary key is the rowid (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, SQLAlchemy's text format (``YYYY-MM-DD HH:MM:SS.ffffff``) written by ``isoformat`` (in C)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        texts: dict[datetime, str] = {}  # a transaction binds the same few instants many times

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            text = texts.get(value)
            if text is None:
                if value.tzinfo is UTC:  # the engine's own instants: the text without its "+00:00"
                    text = value.isoformat(" ", "microseconds")[:26]
                else:
                    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                    text = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
                if len(texts) >= 64:
                    texts.clear()
                texts[value] = text
            return text

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, the text parsed by ``datetime.fromisoformat`` (in C)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            if len(value) == 26:  # as written above: parsing with the offset beats datetime.replace
                return datetime.fromisoformat(value + "+00:00")
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


class Base(DeclarativeBase):
    """Base of every tasker table (all prefixed ``tasker_``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, Any: JSONType}


class Timestamps:
    """``created_at`` / ``updated_at`` columns."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
