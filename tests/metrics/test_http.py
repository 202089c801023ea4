"""The /metrics endpoint: prometheus_client's ASGI exposition behind uvicorn on 127.0.0.1, fetched with httpx."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from tasker.errors import ConfigurationError, MetricsError
from tasker.metrics import MetricsAuth, MetricsBackend, make_metrics_app, serve_metrics
from tasker.metrics.http import IDLE_TIMEOUT_SECONDS

NO_CACHE = {"cache-control": "no-cache, no-store, must-revalidate", "pragma": "no-cache", "expires": "0"}


@contextmanager
def serving(backend: MetricsBackend, auth: MetricsAuth | None = None) -> Iterator[str]:
    server = serve_metrics(backend, port=0, auth=auth)
    try:
        assert server.host == "127.0.0.1" and server.url.endswith("/metrics")
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def url(backend: MetricsBackend) -> Iterator[str]:
    backend.task_created("shop", "order", "1.0.0")
    with serving(backend) as base:
        yield base


def assert_no_cache(response: httpx.Response) -> None:
    for header, value in NO_CACHE.items():
        assert response.headers[header] == value


def test_prometheus_text_by_default(url: str) -> None:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert_no_cache(response)
    assert 'tasker_tasks_created_total{namespace="shop",task="order",version="1.0.0"} 1.0' in response.text


def test_openmetrics_when_asked_for(url: str) -> None:
    accept = "application/openmetrics-text; version=1.0.0; charset=utf-8,text/plain;version=0.0.4;q=0.5"
    response = httpx.get(f"{url}/metrics", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert_no_cache(response)
    families = {family.name: family for family in parse_openmetrics(response.text)}
    assert families["tasker_tasks_created"].samples[0].value == 1


def test_head_has_no_body(url: str) -> None:
    response = httpx.head(f"{url}/metrics")
    assert response.status_code == 200
    assert response.content == b""


def test_other_paths_are_404(url: str) -> None:
    for path in ("/", "/metrics/extra", "/health"):
        assert httpx.get(f"{url}{path}").status_code == 404


def test_other_methods_are_405(url: str) -> None:
    response = httpx.post(f"{url}/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_disabled_metrics_are_503() -> None:
    with serving(MetricsBackend(enabled=False)) as url:
        response = httpx.get(f"{url}/metrics")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert_no_cache(response)
        body = response.json()
        assert body["error"] == "Metrics export failed"
        assert body["message"] == "Metrics collection is disabled"
        datetime.fromisoformat(body["timestamp"])


class _BrokenBackend(MetricsBackend):
    def exposition_registry(self) -> CollectorRegistry:
        raise RuntimeError("registry exploded")


def test_render_failure_is_503(caplog: pytest.LogCaptureFixture) -> None:
    with serving(_BrokenBackend()) as url:
        response = httpx.get(f"{url}/metrics")
    assert response.status_code == 503
    assert response.json()["error"] == "Metrics export failed"
    assert response.json()["message"] == "registry exploded"
    assert_no_cache(response)
    assert "metrics export failed" in caplog.text


def call(app: Any, path: str = "/metrics") -> tuple[int, dict[str, str], bytes]:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metrics") as client:
            return await client.get(path)

    with ThreadPoolExecutor(1) as thread:  # a loop of its own, whatever loop this thread may have
        response = thread.submit(asyncio.run, get()).result()
    return response.status_code, dict(response.headers), response.content


def test_factory_failure_is_503() -> None:
    def factory() -> MetricsBackend:
        raise RuntimeError("no app")

    status, headers, body = call(make_metrics_app(factory))
    assert status == 503
    assert json.loads(body)["error"] == "Metrics endpoint failed"
    assert headers["cache-control"] == NO_CACHE["cache-control"]


def test_the_factory_is_called_per_request() -> None:
    backends = [MetricsBackend(), MetricsBackend(enabled=False)]
    app = make_metrics_app(lambda: backends[0])
    assert call(app)[0] == 200
    backends.reverse()
    assert call(app)[0] == 503


def test_busy_port_is_a_metrics_error(backend: MetricsBackend) -> None:
    server = serve_metrics(backend, port=0)
    try:
        with pytest.raises(MetricsError, match=r"cannot serve metrics on 127\.0\.0\.1"):
            serve_metrics(backend, port=server.port)
    finally:
        server.stop()


def test_gzip_and_name_filter_come_from_prometheus_client(url: str) -> None:
    response = httpx.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "tasker_tasks_created_total" in response.text  # httpx decompressed it
    only = httpx.get(f"{url}/metrics", params=[("name[]", "tasker_tasks_created_total")]).text
    assert "tasker_tasks_created_total{" in only and "tasker_step_duration_seconds" not in only


@pytest.mark.parametrize(
    ("auth", "good", "bad"),
    [
        (MetricsAuth(bearer_token="t0k"), "Bearer t0k", "Bearer nope"),
        (MetricsAuth(username="prom", password="pw"), "Basic " + base64.b64encode(b"prom:pw").decode(), "Basic x"),
    ],
)
def test_auth(backend: MetricsBackend, auth: MetricsAuth, good: str, bad: str) -> None:
    with serving(backend, auth) as url:
        assert httpx.get(f"{url}/metrics", headers={"Authorization": good}).status_code == 200
        for headers in ({"Authorization": bad}, {}):
            response = httpx.get(f"{url}/metrics", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == auth.challenge


def test_auth_needs_complete_credentials() -> None:
    with pytest.raises(ConfigurationError):
        MetricsAuth(username="prom")
    with pytest.raises(ConfigurationError):
        MetricsAuth()


@pytest.mark.slow
def test_idle_connections_are_closed(url: str) -> None:
    """Keep-alive connections left idle are closed by the server (no thread, no socket held forever)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(IDLE_TIMEOUT_SECONDS + 10)
        received = b""
        while chunk := connection.recv(65536):  # ends when the server closes the idle connection
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")


@pytest.mark.slow
def test_connections_that_never_send_a_request_are_closed(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    try:
        for connection in connections:
            connection.settimeout(IDLE_TIMEOUT_SECONDS + 10)
            assert connection.recv(1) == b""  # closed by the server, not by the timeout here
        assert httpx.get(f"{url}/metrics").status_code == 200  # and it still serves
    finally:
        for connection in connections:
            connection.close()
