"""API test fixtures: the real ASGI app over a migrated app (SQLite and PostgreSQL), templates registered."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasker import Tasker, TaskRequest
from tasker.web import create_app
from tests.support.handlers import template

with warnings.catch_warnings():  # starlette asks for httpx2 at import; httpx is what is installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

SECRET_SCHEMA = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "integer"}}}


def register(app: Tasker) -> Tasker:
    """The templates the API tests use: a diamond, a chain, a leaky one, a failing one, one with a schema."""
    app.register_task_template(template("diamond"))
    app.register_task_template(template("chain", {"s0": [], "s1": ["s0"]}, namespace="ops", version="1.0.0"))
    app.register_task_template(
        template("chain", {"s0": [], "s1": ["s0"], "s2": ["s1"]}, namespace="ops", version="1.1.0")
    )
    app.register_task_template(template("leaky", {"leak": []}, handler="tests.web.handlers:Leaky"))
    app.register_task_template(
        template("failing", {"boom": [], "after": ["boom"]}, handler="tests.web.handlers:FailsLeaky")
    )
    app.register_task_template(template("ordered", {"a": []}, schema=SECRET_SCHEMA))
    return app


@pytest.fixture
def tasker_app(make_app: Callable[..., Tasker]) -> Tasker:
    """A migrated app (SQLite and PostgreSQL) with the test templates."""
    return register(make_app())


@pytest.fixture
def make_client(tasker_app: Tasker) -> Iterator[Callable[..., TestClient]]:
    """Clients of ``create_app(tasker_app, **kwargs)``."""
    clients: list[TestClient] = []

    def factory(**kwargs: Any) -> TestClient:
        client = TestClient(create_app(tasker_app, **kwargs))
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A client of the open (no auth) API."""
    return make_client()


def create(app: Tasker, name: str = "diamond", context: dict[str, Any] | None = None, **request: Any) -> int:
    """Create a task through the library; its id."""
    version = request.pop("version", "1.0.0")
    return app.create_task(TaskRequest(name=name, version=version, context=context or {}, **request)).task_id
