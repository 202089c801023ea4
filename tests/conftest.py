"""Shared fixtures: real SQLite files and the real PostgreSQL server, one app per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tasker import Tasker
from tests.support import handlers
from tests.support.otel import reset_global_providers

PG_URL = os.environ.get("TASKER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Zero backoff: retries are immediately eligible, so tests never wait on the clock.
FAST_CONFIG: dict[str, Any] = {"backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0}}


@pytest.fixture(autouse=True)
def _global_otel_providers() -> Iterator[None]:
    """An app with an exporter installs global providers: each test starts without any."""
    yield
    reset_global_providers()


def service_unavailable(what: str, exc: BaseException) -> None:
    """Skip locally, fail in CI: a missing service must never pass silently there."""
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _pg_url() -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A freshly migrated PostgreSQL schema for the whole session."""
    url = _pg_url()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except Exception as exc:
        engine.dispose()
        service_unavailable("PostgreSQL", exc)
    Tasker(url).migrate()
    yield url
    engine.dispose()


def truncate_all(url: str) -> None:
    """Empty every tasker table (the schema stays migrated)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'tasker_%'")
        ).scalars()
        names = ", ".join(tables)
        if names:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Every engine test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tasker.db"
    url: str = request.getfixturevalue("pg_schema")
    truncate_all(url)
    return url


def merge(base: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Deep-merge two config dicts."""
    out = dict(base)
    for key, value in (extra or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Tasker]]:
    """Build migrated apps on the test database (fast backoff unless overridden)."""
    apps: list[Tasker] = []

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Tasker:
        app = Tasker(database_url, config=merge(FAST_CONFIG, config), **kwargs)
        app.migrate()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.shutdown()


@pytest.fixture
def app(make_app: Callable[..., Tasker]) -> Tasker:
    """A migrated app with zero backoff."""
    return make_app()


@pytest.fixture(autouse=True)
def _reset_handler_log() -> Iterator[None]:
    handlers.reset()
    yield
    handlers.reset()
