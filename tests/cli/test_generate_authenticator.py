"""``tasker generate authenticator``: the generated class lints, passes its own tests and guards a real API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import assert_one_line_error, assert_pytest_passes, invoke, load_module, ruff_failures
from tests.web.conftest import TestClient


@pytest.mark.slow
def test_generates_an_authenticator_and_its_passing_test(project: Path, tmp_path: Path) -> None:
    result = invoke("generate", "authenticator", "PartnerApi")
    assert result.exit_code == 0, result.output
    module = project / "auth" / "partner_api_authenticator.py"
    assert (project / "tests" / "auth" / "test_partner_api_authenticator.py").exists()
    assert "web: {authenticator: auth.partner_api_authenticator:PartnerApiAuthenticator}" in result.stdout
    assert "PARTNER_API_API_KEYS" in result.stdout
    assert ruff_failures(project) == []
    assert_pytest_passes(project, 3)  # mypy --strict: tests/cli/test_generated_code.py
    generated = load_module(module)
    auth = generated.PartnerApiAuthenticator({"k": "viewer"})
    from tasker import Tasker
    from tasker.web import create_app

    with Tasker(f"sqlite:///{tmp_path}/t.db") as app:
        app.migrate()
        client = TestClient(create_app(app, auth=auth))
        assert client.get("/api/v1/events", headers={"Authorization": "Bearer k"}).status_code == 200
        assert (
            client.post("/api/v1/tasks", json={"name": "x"}, headers={"Authorization": "Bearer k"}).status_code == 403
        )


def test_refuses_bad_names_and_existing_files(project: Path) -> None:
    assert_one_line_error(invoke("generate", "authenticator", "9lives"), "invalid authenticator name")
    assert invoke("generate", "authenticator", "partner").exit_code == 0
    assert_one_line_error(invoke("generate", "authenticator", "partner"), "refusing to overwrite")
