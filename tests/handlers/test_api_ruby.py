"""ApiStepHandler points where Ruby Tasker's behaviour is the reference, against real local servers."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasker import Tasker, TaskRequest
from tasker.errors import ConfigurationError, RetryableError
from tasker.handlers import ApiStepHandler
from tasker.views import StepSequence, StepView, TaskView
from tests.handlers.conftest import _Routes
from tests.support.http import serving

TASK = TaskView(task_id=1, name="t", namespace="ns", version="1.0.0", status="in_progress", context={})
SEQUENCE = StepSequence([], lambda name: None, list)


class Get(ApiStepHandler):
    """GETs ``handler_config['path']``."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return self.client.get(self.config["path"])


class OwnResults(Get):
    """Overrides process_results, as every handler of Ruby's post 03 does."""

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"shaped": True, "status": process_output.status_code}


def _step(attempts: int = 0) -> StepView:
    return StepView(step_id=1, task_id=1, name="s", status="in_progress", attempts=attempts, retry_limit=3,
                    retryable=True, results={})  # fmt: skip


# -- classification happens before process_results ------------------------------------------------------


def test_a_500_fails_even_when_process_results_is_overridden(server_url: str) -> None:
    step = _step()
    with pytest.raises(RetryableError, match="server error 500"):
        OwnResults({"url": server_url, "path": "/boom"}).handle(TASK, SEQUENCE, step)
    assert step.results == {}
    OwnResults({"url": server_url, "path": "/ok"}).handle(TASK, SEQUENCE, step)
    assert step.results == {"shaped": True, "status": 200}


def test_the_engine_fails_a_step_whose_handler_overrides_process_results(
    make_app: Callable[..., Tasker], server_url: str
) -> None:
    app = make_app()
    app.register_task_template({
        "name": "api", "version": "1.0.0",
        "step_templates": [{
            "name": "call", "handler_class": f"{__name__}:OwnResults", "default_retry_limit": 2,
            "handler_config": {"url": server_url, "path": "/boom"},
        }],
    })  # fmt: skip
    task = app.create_task(TaskRequest(name="api", version="1.0.0", context={"x": 1}))
    assert app.run_until_done(task.task_id) == "error"
    step = app.get_task(task.task_id).step("call")
    assert step.attempts == 2
    assert step.results["error_class"] == "RetryableError"
    assert "server error 500" in step.results["error"]


# -- Faraday's URL joining ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "called"),
    [
        ("/cart", "/carts/1/echo", "/carts/1/echo"),  # a leading slash replaces the base path
        ("/cart", "carts/1/echo", "/cart/carts/1/echo"),  # no slash: appended
        ("/cart/", "carts/1/echo", "/cart/carts/1/echo"),
        ("", "/v1/echo?q=1", "/v1/echo"),
    ],
)
def test_paths_join_the_base_url_as_faraday_joins_them(server_url: str, base: str, path: str, called: str) -> None:
    step = _step()
    Get({"url": server_url + base, "path": path}).handle(TASK, SEQUENCE, step)
    assert step.results["path"] == called


def test_an_absolute_url_is_used_as_is(server_url: str) -> None:
    step = _step()
    Get({"url": "http://unused.invalid/base", "path": server_url + "/x/echo"}).handle(TASK, SEQUENCE, step)
    assert step.results["path"] == "/x/echo"


# -- retry_delay, enable_exponential_backoff, jitter_factor ----------------------------------------------------


def _retry_after(server_url: str, attempts: int = 0, **config: Any) -> float | None:
    with pytest.raises(RetryableError) as info:
        Get({"url": server_url, "path": "/boom", **config}).handle(TASK, SEQUENCE, _step(attempts))
    return info.value.retry_after


def test_without_ruby_retry_options_the_engine_backoff_applies(server_url: str) -> None:
    assert _retry_after(server_url) is None


def test_retry_delay_doubles_per_attempt_with_exponential_backoff(server_url: str) -> None:
    assert [_retry_after(server_url, n, retry_delay=1.5) for n in (0, 1, 2)] == [1.5, 3.0, 6.0]
    assert _retry_after(server_url, 2, enable_exponential_backoff=True) == 4.0  # retry_delay defaults to 1


def test_disabling_exponential_backoff_keeps_the_delay_constant(server_url: str) -> None:
    delays = [_retry_after(server_url, n, retry_delay=2, enable_exponential_backoff=False) for n in (0, 1, 2)]
    assert delays == [2.0, 2.0, 2.0]


def test_jitter_factor_varies_the_delay_within_its_bounds(server_url: str) -> None:
    handler = ApiStepHandler({"url": server_url, "retry_delay": 10, "jitter_factor": 0.5})
    delays = {handler.retry_backoff(1) for _ in range(50)}
    assert all(5.0 <= d <= 15.0 for d in delays if d is not None)
    assert len(delays) > 1


def test_server_retry_after_wins_over_retry_delay(server_url: str) -> None:
    with pytest.raises(RetryableError) as info:
        Get({"url": server_url, "path": "/throttled", "retry_delay": 100}).handle(TASK, SEQUENCE, _step())
    assert info.value.retry_after == 7.0


def test_the_engine_uses_the_handlers_retry_delay_as_the_step_backoff(
    make_app: Callable[..., Tasker], server_url: str
) -> None:
    app = make_app({"backoff": {"max_backoff_seconds": 300}})
    app.register_task_template({
        "name": "api", "version": "1.0.0",
        "step_templates": [{
            "name": "call", "handler_class": f"{__name__}:Get",
            "handler_config": {"url": server_url, "path": "/boom", "retry_delay": 42,
                               "enable_exponential_backoff": False},
        }],
    })  # fmt: skip
    task = app.create_task(TaskRequest(name="api", version="1.0.0", context={"x": 1}))
    assert app.run_task(task.task_id) == "pending"
    step = app.get_task(task.task_id).step("call")
    assert step.backoff_request_seconds == 42


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"retry_delay": -1}, "'retry_delay' must be a number"),
        ({"retry_delay": "2s"}, "'retry_delay' must be a number"),
        ({"enable_exponential_backoff": "yes"}, "'enable_exponential_backoff' must be true or false"),
        ({"jitter_factor": 2}, "'jitter_factor' must be a number from 0 to 1"),
        ({"ssl": {"verify_mode": 0}}, "unsupported key(s) ['verify_mode']"),
        ({"ssl": {"verify": "no"}}, "'ssl.verify' must be true or false"),
        ({"ssl": {"client_key": "k.pem"}}, "'ssl.client_key' needs 'ssl.client_cert'"),
        ({"ssl": {"verify": False}, "verify": True}, "not both"),
    ],
)
def test_invalid_ruby_options_are_refused(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ApiStepHandler({"url": "http://example.com", **config})
    assert fragment in str(info.value)


# -- ssl -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server with a self-signed certificate (made by the openssl CLI); yields (url, cert)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Routes)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server) as port:
        yield f"https://127.0.0.1:{port}", cert


def test_ssl_options_have_an_effect(https_server: tuple[str, Path]) -> None:
    url, cert = https_server
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        Get({"url": url, "path": "/ok"}).handle(TASK, SEQUENCE, _step())
    for ssl_options in ({"verify": False}, {"ca_file": str(cert)}):
        step = _step()
        Get({"url": url, "path": "/ok", "ssl": ssl_options}).handle(TASK, SEQUENCE, step)
        assert step.results == {"ok": True, "items": [1, 2]}
