"""Prepared statements: Core statements compiled once per dialect and run on the DBAPI cursor.

The engine's hot path (claims, outcomes, transition rows, readiness) runs a handful of statements per step.
Through ``Connection.execute`` each costs ~0.1 ms of CPU in SQLAlchemy (execution context, parameter
processing, result set-up) where the driver needs ~0.01 ms. A :class:`Prepared` statement is still written as a
Core construct, compiled by SQLAlchemy (so the SQL is the dialect's own), and binds its parameters with the
dialect's own type processors (timestamps, JSON through the app's encoder, booleans); it only skips the
per-execution machinery. It runs inside the caller's transaction, on the same DBAPI connection.

Statements run here still reach ``before_cursor_execute`` listeners of the engine (with no execution context),
so statement counters see them.
"""

from __future__ import annotations

import collections
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass
class _Compiled:
    sql: str
    #: Parameter names, in positional order for qmark/format styles.
    names: tuple[str, ...]
    #: The parameters' values out of the caller's mapping, in ``names`` order, as a tuple (in C).
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    #: (index in ``names``, type processor) of the parameters that have one.
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: Whether the driver takes a tuple (qmark/format styles) rather than a dict (named styles).
    positional: bool
    #: Values of the statement's literal bind parameters (``.values(flag=False)``, ``count - 1``).
    defaults: dict[str, Any]
    #: Columns whose Python-side default (INSERT) or ``onupdate`` (UPDATE) fills a parameter not given.
    generated: tuple[tuple[str, Any], ...]
    columns: tuple[str, ...]
    types: tuple[Any, ...]
    #: Result processors, from the column types and the driver's type codes of the first result.
    results: tuple[Callable[[Any], Any] | None, ...] | None = None


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda params: (params[name],)
    return cast(Callable[[Mapping[str, Any]], tuple[Any, ...]], operator.itemgetter(*names)) if names else lambda _: ()


#: Up to this many parameter sets, psycopg runs a statement once per set rather than in a pipeline.
_FEW = 8


def _generate(default: Any) -> Any:
    """The value of a column's Python-side default: its callable's result (as SQLAlchemy calls it) or scalar."""
    return default.arg(None) if default.is_callable else default.arg


class Prepared:
    """A Core statement, compiled once per dialect, executed on the caller's transaction's DBAPI cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()
        self._row_types: dict[tuple[str, ...], Any] = {}
        self._last: tuple[Dialect, _Compiled] | None = None  # the one dialect of a process, almost always

    def _compile(self, dialect: Dialect) -> _Compiled:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        compiled = self._compiled.get(dialect)
        if compiled is None:
            c = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            columns = tuple(col[0] for col in c._result_columns)
            types = tuple(col[3] for col in c._result_columns)
            processors = {name: bind for name, bind in c._bind_processors.items() if callable(bind)}
            literal = c.construct_params(_check=False) or {}
            defaults = {key: value for key, value in literal.items() if value is not None}
            names = tuple(c.positiontup if c.positiontup is not None else literal)
            processed = tuple((i, processors[name]) for i, name in enumerate(names) if name in processors)
            positional = c.positiontup is not None
            generated = tuple(
                (column.key, default)
                for column, default in [
                    *((column, column.default) for column in c.insert_prefetch),
                    *((column, column.onupdate) for column in c.update_prefetch),
                ]
                if default is not None and (default.is_callable or default.is_scalar)
            )
            compiled = _Compiled(
                c.string, names, _getter(names), processed, positional, defaults, generated, columns, types
            )
            self._compiled[dialect] = compiled
        self._last = (dialect, compiled)
        return compiled

    @staticmethod
    def _bind(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        if compiled.defaults or compiled.generated:
            made = {key: _generate(default) for key, default in compiled.generated if key not in params}
            params = {**compiled.defaults, **made, **params}
        values: Sequence[Any] = compiled.values(params)
        if compiled.processed:
            values = list(values)
            for i, process in compiled.processed:
                values[i] = process(values[i])
        return tuple(values) if compiled.positional else dict(zip(compiled.names, values, strict=True))

    def _run(self, connection: Connection, params: Any, many: bool, fetch: bool) -> tuple[int, list[Any]]:
        """Execute on a fresh cursor; (rowcount, fetched rows). Driver errors are raised as SQLAlchemy raises
        them (``DBAPIError`` subclasses, the connection invalidated on a disconnect)."""
        compiled = self._compile(connection.dialect)
        parameters = [self._bind(compiled, p) for p in params] if many else self._bind(compiled, params)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, cursor, compiled.sql, parameters, None, many)
            if many and (len(parameters) > _FEW or connection.dialect.driver != "psycopg"):
                cursor.executemany(compiled.sql, parameters)
            elif many:  # psycopg's executemany sets up a pipeline: for a few rows, a CPU cost that plain runs avoid
                for row in parameters:
                    cursor.execute(compiled.sql, row)
            else:
                cursor.execute(compiled.sql, parameters)
            if not fetch:
                return int(cursor.rowcount), []
            fetched = cursor.fetchall()
            if compiled.results is None:
                compiled.results = tuple(
                    type_._cached_result_processor(connection.dialect, description[1])
                    for type_, description in zip(compiled.types, cursor.description, strict=True)
                )
            return int(cursor.rowcount), list(fetched)
        except connection.dialect.loaded_dbapi.Error as exc:
            connection._handle_dbapi_exception(exc, compiled.sql, parameters, cursor, None)
        finally:
            cursor.close()

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Run the statement once; the number of rows it changed."""
        return self._run(connection, params, many=False, fetch=False)[0]

    def executemany(self, connection: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set, in one driver call."""
        if params:
            self._run(connection, params, many=True, fetch=False)

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run a query; its rows (attribute access by column name), values processed like SQLAlchemy's."""
        _count, fetched = self._run(connection, params, many=False, fetch=True)
        compiled = self._compile(connection.dialect)
        make = self._row_type(compiled.columns)._make
        processors = compiled.results or ()
        if not any(processors):
            return [make(row) for row in fetched]
        return [
            make(value if process is None else process(value) for value, process in zip(row, processors, strict=True))
            for row in fetched
        ]

    def _row_type(self, columns: tuple[str, ...]) -> Any:
        """A named tuple of the columns (a repeated or invalid name is renamed ``_<index>``)."""
        row_type = self._row_types.get(columns)
        if row_type is None:
            row_type = self._row_types[columns] = collections.namedtuple("Row", columns, rename=True)
        return row_type
