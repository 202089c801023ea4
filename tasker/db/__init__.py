"""Database access: engine set-up per backend, sessions, transactions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout and a connection per thread;
write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout
instead of failing on a lock upgrade. PostgreSQL runs through psycopg 3.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tasker.encoding import dumps
from tasker.errors import ConfigurationError, StoreError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for bare ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """OpenTelemetry instrumentation suppressed: tasker's own queries (polls, claims, bookkeeping) make no spans.

    Instrumentations (psycopg, SQLAlchemy, ...) check this context key; a handler's own database calls, made
    outside tasker's sessions, are traced normally under the step span.
    """
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Database driver errors become :class:`StoreError` (the driver's error chained)."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(f"database error: {exc.orig}") from exc


def _driver_begin(connection: Connection) -> None:
    """Begin a transaction on the connection's driver connection, for statements run there (``Prepared``).

    SQLAlchemy's transaction bookkeeping is skipped (the transaction is the driver's alone); ``begin`` listeners
    still run: on SQLite one emits ``BEGIN IMMEDIATE``, and statement counters count the transaction.
    """
    try:
        for listener in connection.dispatch.begin:
            listener(connection)
    except connection.dialect.loaded_dbapi.Error as exc:
        connection._handle_dbapi_exception(exc, None, None, None, None)


def _driver_end(connection: Connection, commit: bool) -> None:
    """Commit (or roll back) the driver's transaction begun by :func:`_driver_begin`; ``commit`` listeners run."""
    driver = connection.connection.dbapi_connection
    assert driver is not None
    error = connection.dialect.loaded_dbapi.Error
    if not commit:
        try:
            driver.rollback()
        except error:  # the error being raised already says what went wrong
            logger.debug("rollback failed", exc_info=True)
        return
    try:
        driver.commit()
    except error as exc:
        with contextlib.suppress(error):
            driver.rollback()
        connection._handle_dbapi_exception(exc, None, None, None, None)
    for listener in connection.dispatch.commit:
        listener(connection)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("tasker_readonly", False)
        # on the driver's connection: the statement needs none of SQLAlchemy's execution machinery
        conn.connection.dbapi_connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")


class Database:
    """One engine and its session factories; owned by one ``Tasker`` app."""

    def __init__(self, url: str, *, pool_size: int = 8, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalize_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise ConfigurationError(f"invalid database URL {url!r}: {exc}") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in SUPPORTED_BACKENDS:
            raise ConfigurationError(
                f"unsupported database backend {self.dialect!r} in {url!r}: tasker supports "
                + " and ".join(SUPPORTED_BACKENDS)
            )
        # One JSON encoder for both backends (NaN/Infinity refused alike); callers check values first.
        kwargs: dict[str, Any] = {"json_serializer": dumps}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        elif self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        try:
            self.engine = create_engine(self.url, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the driver for {self.dialect} is not installed: pip install 'tasker-engine[postgres]'"
            ) from exc
        except (NoSuchModuleError, ArgumentError) as exc:
            raise ConfigurationError(f"unsupported database URL {url!r}: {exc}") from exc
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, sqlite_synchronous)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; queueing this process's writers on a lock hands the write lock
        # over at once, instead of each waiting thread polling in SQLite's sleeping busy handler.
        self._write_lock: threading.Lock | None = threading.Lock() if self.dialect == "sqlite" else None
        self._read_engine = self.engine.execution_options(tasker_readonly=True)
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False)
        #: Whether the schema was seen at the latest revision: writes rely on its triggers (migration 0005).
        self._current = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on error; DB errors become StoreError."""
        with untraced(), self._writing(), _store_errors(), self._writer.begin() as session:
            yield session

    @contextlib.contextmanager
    def connection(self, pinned: Connection | None = None) -> Iterator[Connection]:
        """A write transaction on a Core connection (no ORM session): the engine's hot path.

        On ``pinned`` (from :meth:`pinned`) when given, instead of a connection checked out for this transaction.
        """
        if pinned is None:
            with untraced(), self._writing(), _store_errors(), self.engine.begin() as connection:
                yield connection
        else:
            with untraced(), self._writing(), _store_errors():
                _driver_begin(pinned)
                try:
                    yield pinned
                except BaseException:
                    _driver_end(pinned, commit=False)
                    raise
                _driver_end(pinned, commit=True)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Connection]:
        """One pooled connection kept for a series of :meth:`connection` transactions (an orchestration pass).

        Only the checkout and the return are untraced: what runs in between (a handler) is traced as usual.
        """
        with untraced(), _store_errors():
            connection = self.engine.connect()
        try:
            yield connection
        finally:
            with untraced(), _store_errors():
                connection.close()

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only Core connection (no write lock on SQLite)."""
        with untraced(), _store_errors(), self._read_engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (no write lock on SQLite)."""
        with untraced(), _store_errors(), self._reader() as session:
            yield session

    def _writing(self) -> contextlib.AbstractContextManager[object]:
        """The write lock (SQLite); before the first write, :meth:`check_ready`, so that nothing is written
        to a schema whose bookkeeping triggers are missing or newer than this code."""
        if not self._current:
            self.check_ready()
        return self._write_lock or contextlib.nullcontext()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic (idempotent)."""
        from alembic import command

        config = alembic_config()
        try:
            with untraced(), self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"migration failed: {exc}") from exc
        self._current = revision == "head"

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None when never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with untraced(), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def check_ready(self) -> None:
        """Raise StoreError in one line unless the database is reachable and migrated to the latest revision
        (one this code knows: a schema migrated by a newer tasker is refused too); once it passed, writes skip it."""
        from alembic.script import ScriptDirectory

        try:
            current = self.current_revision()
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"cannot reach the database at {self.safe_url}: {reason}") from exc
        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_current_head()
        if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
            raise StoreError(f"schema is newer than this tasker: upgrade tasker (at {current}, latest known {head})")
        if current != head:
            raise StoreError(
                f"schema is not migrated: run tasker db upgrade (at {current or 'nothing'}, latest {head})"
            )
        self._current = True

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden (for messages)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def table_names(self) -> list[str]:
        """Tables present in the database."""
        with untraced():
            return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config() -> Any:
    """An Alembic config pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(importlib.resources.files("tasker.migrations")))
    return config
