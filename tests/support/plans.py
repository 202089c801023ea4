"""The database's own query plan, as text, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from tasker import Tasker


def query_plan(app: Tasker, sql: str, params: Any = None) -> str:
    """The plan of ``sql`` (with ``params``) on the app's database.

    On PostgreSQL sequential scans are forbidden for the question: on a test's small tables the planner would read
    a table whole, and what matters is which index it *can* use.
    """
    with app.db.engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if connection.dialect.name == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params or ())
        return " ".join(str(row[-1]) for row in cursor.fetchall())
