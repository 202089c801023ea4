"""docs/api.md stays true: its Python and YAML run, its curl commands run against a real ``tasker serve``."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from tasker import Tasker
from tasker.config import TaskerConfig
from tasker.web import TokenAuth, auth_from_config, create_app
from tests.cli.support import ORDER_TEMPLATE, invoke
from tests.support.docs import blocks
from tests.web.conftest import TestClient
from tests.web.test_serve import free_port, start, stop

DOC = "api.md"
BASE = "http://localhost:8000"


def curl_commands() -> list[tuple[str, Any]]:
    """Each curl command of the page (continuation lines joined) with the JSON shown after its block, if any."""
    found = blocks(DOC)
    commands: list[tuple[str, Any]] = []
    for index, block in enumerate(found):
        if block.language != "bash":
            continue
        lines: list[str] = []
        for line in block.code.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                lines.append(line)
            elif lines and line.startswith(" "):  # inside a multi-line quoted argument
                lines[-1] += "\n" + line
        after = found[index + 1] if index + 1 < len(found) else None
        shown = None
        end = block.line + block.code.count("\n") + 1
        if after is not None and after.language == "json" and after.line - end <= 2:  # right below: the output
            try:
                shown = json.loads(after.code)
            except json.JSONDecodeError:  # an abridged example ("[...]")
                shown = None
        commands += [(line, shown if i == len(lines) - 1 else None) for i, line in enumerate(lines)]
    return commands


def contains(actual: Any, expected: Any) -> bool:
    """``expected``'s keys and values are in ``actual`` (recursively for objects)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return bool(actual == expected)


def test_the_page_has_examples() -> None:
    commands = curl_commands()
    assert len(commands) >= 12
    assert any(shown is not None for _, shown in commands)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_examples_run_against_a_real_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/docs.db"
    assert invoke("db", "upgrade", "--database-url", url).exit_code == 0
    port = free_port()
    env = {**os.environ, "TASKER_DATABASE_URL": url, "TASKER_API_WRITE_TOKEN": "doc-token"}
    server = start("serve", "--port", str(port), "--templates", str(ORDER_TEMPLATE), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        for command, shown in curl_commands():
            done = subprocess.run(
                command.replace(BASE, base) + " -w '\\n%{http_code}'", shell=True, env=env,
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stderr)
            body, _, status = done.stdout.rpartition("\n")
            if shown is not None:
                assert contains(json.loads(body), shown), (command, body)
            elif "/metrics" in command:
                assert status == "200" and "tasker_tasks_created_total" in body
            else:
                assert status.startswith("2"), (command, status, body)
                json.loads(body)
    finally:
        stop(server)


@pytest.fixture
def order_app(tmp_path: Path) -> Iterator[Tasker]:
    app = Tasker(f"sqlite:///{tmp_path}/t.db")
    app.migrate()
    app.load_task_templates(ORDER_TEMPLATE)
    yield app
    app.shutdown()


def test_the_documented_validation_error(order_app: Tasker) -> None:
    (shown,) = [json.loads(b.code) for b in blocks(DOC) if b.language == "json" and "validation_error" in b.code]
    body = {"name": "order_process", "namespace": "ecommerce", "version": "1.0.0",
            "context": {"order_id": "x", "items": [{"sku": "A", "price": 1, "quantity": 1}]}}  # fmt: skip
    response = TestClient(create_app(order_app)).post("/api/v1/tasks", json=body)
    assert response.status_code == 422 and response.json() == shown


def test_python_block_builds_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = [b for b in blocks(DOC) if b.language == "python"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config" / "tasks").mkdir(parents=True)
    shutil.copy(ORDER_TEMPLATE, tmp_path / "config" / "tasks")
    (tmp_path / "api.py").write_text(block.code)
    namespace = runpy.run_path(str(tmp_path / "api.py"))
    try:
        assert isinstance(namespace["api"], FastAPI)
    finally:
        namespace["tasker_app"].shutdown()


def test_yaml_block_configures_tokens(order_app: Tasker, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = [b for b in blocks(DOC) if b.language == "yaml"]
    monkeypatch.setenv("TASKER_API_WRITE_TOKEN", "write-secret")
    web = TaskerConfig.coerce(yaml.safe_load(block.code)).web
    auth = auth_from_config(web)
    assert isinstance(auth, TokenAuth) and web.metrics_require_auth
    client = TestClient(create_app(order_app, auth=auth))
    read = {"Authorization": "Bearer 123456"}  # the documented digest is sha256("123456")
    assert client.get("/api/v1/templates", headers=read).status_code == 200
    assert client.post("/api/v1/tasks/1/cancel", headers=read).status_code == 403
    write = {"Authorization": "Bearer write-secret"}
    assert client.post("/api/v1/tasks/1/cancel", headers=write).status_code == 404
    assert re.search(r"sha256\(b'TOKEN'\)", (Path(__file__).parents[2] / "docs" / DOC).read_text())
