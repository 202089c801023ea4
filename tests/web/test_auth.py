"""Bearer tokens and pluggable authenticators: 401 with WWW-Authenticate, 403, open health endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from tasker import Tasker
from tasker.config import TaskerConfig
from tasker.errors import ConfigurationError
from tasker.web import TokenAuth, auth_from_config, create_app
from tests.web.conftest import TestClient, create, register
from tests.web.test_api import error

READER, WRITER = "reader-token-1", "writer-token-2"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKENS = {
    "tokens": [
        {"token_sha256": sha(READER), "scopes": ["read"]},
        {"token_env": "TASKER_TEST_WRITER", "scopes": ["write"]},
    ]
}


@pytest.fixture
def secured(make_app: Callable[..., Tasker], monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The API of an app configured with a read token (by digest) and a write token (by environment variable)."""
    monkeypatch.setenv("TASKER_TEST_WRITER", WRITER)
    app = register(make_app({"web": TOKENS}))
    return TestClient(create_app(app))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_or_bad_token_is_401_with_www_authenticate(secured: TestClient) -> None:
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = secured.get("/api/v1/templates", headers=headers)
        error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    error(secured.post("/api/v1/tasks", json={"name": "diamond"}), 401, "unauthorized")
    error(secured.get("/metrics"), 401, "unauthorized")
    error(secured.get("/health/status"), 401, "unauthorized")


def test_scopes(secured: TestClient) -> None:
    assert secured.get("/api/v1/templates", headers=bearer(READER)).status_code == 200
    body = {"name": "diamond", "version": "1.0.0"}
    error(secured.post("/api/v1/tasks", json=body, headers=bearer(READER)), 403, "forbidden")
    created = secured.post("/api/v1/tasks", json=body, headers=bearer(WRITER))
    assert created.status_code == 201
    task_id = created.json()["task"]["task_id"]
    error(secured.get(f"/api/v1/tasks/{task_id}", headers=bearer(WRITER)), 403, "forbidden")
    assert secured.get(f"/api/v1/tasks/{task_id}", headers=bearer(READER)).json()["task"]["status"] == "pending"
    assert secured.get("/metrics", headers=bearer(READER)).status_code == 200


def test_health_live_and_ready_stay_open(secured: TestClient) -> None:
    assert secured.get("/health/live").status_code == 200
    assert secured.get("/health/ready").status_code == 200


def test_metrics_can_be_open(make_app: Callable[..., Tasker], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKER_TEST_WRITER", WRITER)
    app = make_app({"web": {**TOKENS, "metrics_require_auth": False}})
    client = TestClient(create_app(app))
    assert client.get("/metrics").status_code == 200
    error(client.get("/api/v1/templates"), 401, "unauthorized")


def test_custom_authenticator_by_import_path(make_app: Callable[..., Tasker]) -> None:
    app = register(make_app({"web": {"authenticator": "tests.web.sample_auth:HeaderAuth"}}))
    client = TestClient(create_app(app))
    task_id = create(app)
    response = client.get(f"/api/v1/tasks/{task_id}")
    error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "X-User"
    assert client.get(f"/api/v1/tasks/{task_id}", headers={"X-User": "ann"}).status_code == 200
    error(client.get("/api/v1/stats", headers={"X-User": "ann"}), 403, "forbidden")
    error(client.post(f"/api/v1/tasks/{task_id}/cancel", headers={"X-User": "ann"}), 403, "forbidden")
    assert client.post(f"/api/v1/tasks/{task_id}/cancel", headers={"X-User": "admin"}).status_code == 200


def test_explicit_auth_argument_wins(tasker_app: Tasker) -> None:
    client = TestClient(create_app(tasker_app, auth=TokenAuth([(sha("t"), ["read"])])))
    error(client.get("/api/v1/templates"), 401, "unauthorized")
    assert client.get("/api/v1/templates", headers=bearer("t")).status_code == 200


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"tokens": [{"token_env": "TASKER_TEST_UNSET_TOKEN"}]}, "TASKER_TEST_UNSET_TOKEN is not set"),
        ({"authenticator": "tests.web.sample_auth:Missing"}, "cannot import"),
        ({"authenticator": "tests.web.conftest:register"}, "not a tasker.web.Auth subclass"),
    ],
)
def test_bad_auth_configuration(web: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        auth_from_config(TaskerConfig.coerce({"web": web}).web)


@pytest.mark.parametrize(
    "token",
    [{"scopes": ["read"]}, {"token_sha256": sha("a"), "token_env": "X"}, {"token_sha256": "abc"},
     {"token_env": "X", "scopes": ["admin"]}],
)  # fmt: skip
def test_token_config_is_validated(token: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"web\.tokens"):
        TaskerConfig.coerce({"web": {"tokens": [token]}})


def test_no_auth_configured_means_open(tasker_app: Tasker) -> None:
    assert auth_from_config(tasker_app.config.web) is None
    assert TestClient(create_app(tasker_app)).get("/api/v1/templates").status_code == 200
