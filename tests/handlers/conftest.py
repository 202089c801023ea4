"""A real local HTTP server for the ApiStepHandler tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tasker.views import StepView

LONG_BODY = "x" * 5000


class _Routes(BaseHTTPRequestHandler):
    """Fixed routes: ``/ok``, ``/created``, ``/throttled``, ``/unavailable``, ``/status/<code>``..."""

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == "/ok":
            self._send(200, json.dumps({"ok": True, "items": [1, 2]}), "application/json")
        elif path == "/created":
            self._send(201, "created", "text/plain")
        elif path == "/bad-json":
            self._send(200, "{not json", "application/json")
        elif path == "/throttled":
            self._send(429, "slow down", "text/plain", {"Retry-After": "7"})
        elif path == "/unavailable":
            retry_at = formatdate(time.time() + 10, usegmt=True)
            self._send(503, "maintenance", "text/plain", {"Retry-After": retry_at})
        elif path == "/boom":
            self._send(500, "internal boom", "text/plain")
        elif path == "/long-error":
            self._send(500, LONG_BODY, "text/plain")
        elif path == "/redirect":
            self._send(302, "", "text/plain", {"Location": "/ok"})
        elif path == "/slow":
            time.sleep(0.5)
            self._send(200, "late", "text/plain")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, f"error body {code}", "text/plain")
        elif path.endswith("/echo"):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            echo = {
                "method": self.command,
                "path": path,
                "query": parse_qs(url.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            self._send(200, json.dumps(echo), "application/json")
        else:
            self._send(404, "no such route", "text/plain")

    def _send(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """Base URL of a threaded HTTP server on 127.0.0.1 (random port), for the module's tests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def step() -> StepView:
    """A fresh in-progress step with empty results."""
    return StepView(
        step_id=1,
        task_id=1,
        name="s",
        status="in_progress",
        attempts=0,
        retry_limit=3,
        retryable=True,
        results={},
    )
