"""``tasker serve`` as a real process: a task created over HTTP, run by a real ``tasker worker``, read back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tasker.cli import main
from tasker.cli.serve import is_loopback
from tests.cli.support import REPO, invoke
from tests.support.handlers import template


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tasker", *args], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, wait, and the process's output; it must have exited cleanly."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_task_created_over_http_is_run_by_a_worker(
    database_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    templates = tmp_path / "chain.yaml"
    templates.write_text(yaml.safe_dump(template("http_chain", {"a": [], "b": ["a"]})))
    config = tmp_path / "tasker.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database": {"url": database_url}, "templates": {"paths": [str(templates)]},
             "web": {"tokens": [{"token_env": "TEST_API_TOKEN", "scopes": ["read", "write"]}]}}
        )
    )  # fmt: skip
    env = {**os.environ, "TEST_API_TOKEN": "s3cret-token"}
    env.pop("TASKER_DATABASE_URL", None)
    assert invoke("db", "upgrade", "--database-url", database_url).exit_code == 0
    port = free_port()
    server = start("--config", str(config), "serve", "--port", str(port), env=env)
    processes.append(server)
    base = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=base, headers={"Authorization": "Bearer s3cret-token"})

    def ready() -> bool:
        assert server.poll() is None, server.communicate()[0]
        try:
            return httpx.get(f"{base}/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, "the server")
    assert httpx.get(f"{base}/api/v1/tasks").status_code == 401
    created = api.post("/api/v1/tasks", json={"name": "http_chain", "version": "1.0.0", "context": {"n": 1}})
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["task_id"]
    worker = start("--config", str(config), "worker", "--poll-interval", "0.05", env=env)
    processes.append(worker)
    wait_for(lambda: api.get(f"/api/v1/tasks/{task_id}").json()["task"]["status"] == "complete", "the task")
    task = api.get(f"/api/v1/tasks/{task_id}").json()["task"]
    assert [s["results"] for s in task["steps"]] == [{"step": "a", "attempt": 1}, {"step": "b", "attempt": 1}]
    listed = api.get("/api/v1/tasks", params={"status": "complete"}).json()
    assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    api.close()
    stop(worker)
    output = stop(server)
    assert "serving the tasker API" in output and "s3cret-token" not in output


def test_refuses_a_public_address_without_auth() -> None:
    result = invoke("serve", "--host", "0.0.0.0")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: refusing to serve 0.0.0.0 without authentication: configure web.tokens or web.authenticator, "
        "or pass --insecure-no-auth"
    ]
    assert "serve" in main.commands


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
