"""Browser test fixtures: the dashboard served by uvicorn on a free port, driven by headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright for Python. Without it the tests skip
locally and fail in CI. Screenshots go to ``test-artifacts/`` at the repository root (ignored by git).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tasker import Tasker
from tasker.web import Auth, create_app
from tests.conftest import FAST_CONFIG, service_unavailable, truncate_all

CHROMIUM = Path(os.environ.get("TASKER_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pg_app(pg_schema: str) -> Iterator[Tasker]:
    """A migrated app on an emptied PostgreSQL schema."""
    truncate_all(pg_schema)
    app = Tasker(pg_schema, config=FAST_CONFIG)
    yield app
    app.shutdown()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Serve ``create_app(app, auth=...)`` with uvicorn in a thread; the base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Tasker, auth: Auth | None = None) -> str:
        port = _free_port()
        config = uvicorn.Config(create_app(app, auth=auth), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (skipped locally without it, a failure in CI)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        service_unavailable("Chromium", FileNotFoundError(str(CHROMIUM)))
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1280 x 860."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
