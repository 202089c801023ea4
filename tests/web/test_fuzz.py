"""Schemathesis over the whole OpenAPI spec: no 5xx, every response matches its schema (bounded examples)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.generation.case import Case

from tasker import Tasker
from tasker.web import create_app
from tests.conftest import FAST_CONFIG
from tests.web.conftest import create, register


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    """The spec of an API over a SQLite app holding a few tasks (ids 1-4: pending, complete, error, cancelled)."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "tasker.db"
    app = register(Tasker(f"sqlite:///{path}", config=FAST_CONFIG))
    app.migrate()
    create(app)
    app.run_until_done(create(app))
    app.run_until_done(create(app, "failing"))
    app.cancel_task(create(app))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app))
    app.shutdown()


schema = schemathesis.pytest.from_fixture("api_schema")

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_spec(case: Case) -> None:
    # What the API promises: no server error, documented statuses and content types, bodies matching schemas.
    # (Leniency such as accepting a Unix timestamp for a date-time is allowed.)
    case.call_and_validate(checks=CHECKS)
