"""``/health/ready`` answers 503 naming the failing check: database gone, schema not migrated, no answer in time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tasker import Tasker
from tasker.web import create_app
from tests.celery.tcp_proxy import TcpProxy
from tests.conftest import FAST_CONFIG
from tests.web.conftest import TestClient


def checks(response: object) -> dict[str, str]:
    body = response.json()  # type: ignore[attr-defined]
    return {name: check["status"] for name, check in body["checks"].items()}


@pytest.fixture
def unmigrated_url(database_url: str) -> str:
    """An empty database: a new SQLite file, or an empty PostgreSQL schema first on the search path."""
    if not database_url.startswith("postgresql"):
        return database_url.replace("tasker.db", "empty.db")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS web_unmigrated CASCADE"))
        connection.execute(text("CREATE SCHEMA web_unmigrated"))
    engine.dispose()
    return database_url + "?options=-csearch_path%3Dweb_unmigrated"


def test_unmigrated_database_is_not_ready(unmigrated_url: str) -> None:
    app = Tasker(unmigrated_url, config=FAST_CONFIG)
    try:
        client = TestClient(create_app(app))
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"
        assert checks(response) == {"database": "ok", "schema": "fail"}
        assert "tasker db upgrade" in response.json()["checks"]["schema"]["detail"]
        assert client.get("/health/live").status_code == 200
        app.migrate()
        assert client.get("/health/ready").status_code == 200
    finally:
        app.shutdown()


@pytest.fixture
def proxied(pg_schema: str) -> Iterator[tuple[Tasker, TcpProxy]]:
    """An app on the PostgreSQL test database through a TCP proxy that can be switched off."""
    url = make_url(pg_schema)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        app = Tasker(url.set(port=proxy.port).render_as_string(hide_password=False), config=FAST_CONFIG)
        yield app, proxy
        app.shutdown()


@pytest.mark.postgres
def test_database_down_is_503_and_back_up_is_200(proxied: tuple[Tasker, TcpProxy]) -> None:
    app, proxy = proxied
    client = TestClient(create_app(app))
    assert client.get("/health/ready").status_code == 200
    proxy.down()
    response = client.get("/health/ready")
    assert response.status_code == 503 and checks(response) == {"database": "fail", "schema": "fail"}
    assert response.json()["checks"]["database"]["detail"]
    assert client.get("/health/live").json() == {"status": "alive"}
    error = client.get("/api/v1/tasks/1").json()["error"]
    assert client.get("/api/v1/tasks/1").status_code == 503 and error["code"] == "store_unavailable"
    proxy.up()
    deadline = time.monotonic() + 10
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "never ready again"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung database)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.postgres
def test_ready_is_bounded_by_its_timeout(silent_server: int) -> None:
    app = Tasker(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/tasker", config=FAST_CONFIG)
    try:
        client = TestClient(create_app(app, ready_timeout=0.5))
        started = time.monotonic()
        response = client.get("/health/ready")
        assert time.monotonic() - started < 5
        assert response.status_code == 503 and checks(response) == {"database": "fail", "schema": "fail"}
        assert response.json()["checks"]["database"]["detail"] == "no answer within 0.5s"
    finally:
        app.db.engine.pool.dispose()
