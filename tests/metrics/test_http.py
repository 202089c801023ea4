"""The /metrics endpoint, over a real server on 127.0.0.1 fetched with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from tasker.errors import MetricsError
from tasker.metrics import MetricsBackend, make_metrics_app, serve_metrics

NO_CACHE = {"cache-control": "no-cache, no-store, must-revalidate", "pragma": "no-cache", "expires": "0"}


@contextmanager
def serving(backend: MetricsBackend) -> Iterator[str]:
    server, thread = serve_metrics(backend, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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


def call(app: Any, path: str = "/metrics") -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=dict(headers))

    body = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], body


def test_factory_failure_is_503() -> None:
    def factory() -> MetricsBackend:
        raise RuntimeError("no app")

    status, headers, body = call(make_metrics_app(factory))
    assert status == "503 Service Unavailable"
    assert json.loads(body)["error"] == "Metrics endpoint failed"
    assert headers["Cache-Control"] == NO_CACHE["cache-control"]


def test_the_factory_is_called_per_request() -> None:
    backends = [MetricsBackend(), MetricsBackend(enabled=False)]
    app = make_metrics_app(lambda: backends[0])
    assert call(app)[0] == "200 OK"
    backends.reverse()
    assert call(app)[0] == "503 Service Unavailable"


def test_busy_port_is_a_metrics_error(backend: MetricsBackend) -> None:
    server, thread = serve_metrics(backend, port=0)
    try:
        with pytest.raises(MetricsError, match=r"cannot serve metrics on 127\.0\.0\.1"):
            serve_metrics(backend, port=server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
