"""ApiStepHandler against a real local HTTP server (see conftest.py)."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tasker.errors import ConfigurationError, PermanentError, RetryableError
from tasker.handlers import ApiStepHandler, StepHandler
from tasker.views import StepSequence, StepView, TaskView

TASK = TaskView(task_id=1, name="t", namespace="ns", version="1.0.0", status="in_progress", context={"id": 5})
SEQUENCE = StepSequence([], lambda name: None, list)


class GetHandler(ApiStepHandler):
    """GETs the ``path`` given at construction."""

    def __init__(self, url: str, path: str, **config: Any) -> None:
        super().__init__({"url": url, **config})
        self.path = path

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return self.client.get(self.path)


def run(handler: StepHandler, step: StepView) -> None:
    """What the engine does."""
    handler.handle(TASK, SEQUENCE, step)


def call(server_url: str, path: str, step: StepView, **config: Any) -> None:
    run(GetHandler(server_url, path, **config), step)


# -- configuration ---------------------------------------------------------------------------------


def test_is_a_step_handler_with_defaults(server_url: str) -> None:
    handler = ApiStepHandler({"url": server_url, "type": "api"})
    assert isinstance(handler, StepHandler)
    assert handler.config == {"url": server_url, "type": "api"}
    assert handler.base_url == server_url
    assert handler.params == {}
    assert handler.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert handler.timeout == 30.0
    assert handler.verify is True


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "'url' is required"),
        (None, "'url' is required"),
        ({"url": ""}, "'url' is required"),
        ({"url": "   "}, "'url' is required"),
        ({"url": 42}, "'url' must be a string"),
        ({"url": "/orders"}, "absolute http(s) URL"),
        ({"url": "api.example.com/orders"}, "absolute http(s) URL"),
        ({"url": "ftp://example.com"}, "absolute http(s) URL"),
        ({"url": "http://"}, "absolute http(s) URL"),
        ({"url": "http://[::1"}, "not a valid URL"),
        ({"url": "http://x", "params": ["a"]}, "'params' must be a mapping"),
        ({"url": "http://x", "headers": "X-A: 1"}, "'headers' must be a mapping"),
        ({"url": "http://x", "timeout": 0}, "'timeout' must be a positive number"),
        ({"url": "http://x", "timeout": -1}, "'timeout' must be a positive number"),
        ({"url": "http://x", "timeout": "30"}, "'timeout' must be a positive number"),
        ({"url": "http://x", "timeout": True}, "'timeout' must be a positive number"),
        ({"url": "http://x", "timeout": float("nan")}, "'timeout' must be a positive number"),
        ({"url": "http://x", "verify": ""}, "'verify' must be true/false"),
        ({"url": "http://x", "verify": 1}, "'verify' must be true/false"),
    ],
)
def test_invalid_config_is_rejected_at_construction(config: dict[str, Any] | None, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match="ApiStepHandler") as info:
        ApiStepHandler(config)
    assert fragment in str(info.value)


def test_https_url_and_custom_values_are_accepted() -> None:
    handler = ApiStepHandler(
        {"url": " https://api.example.com/v1 ", "params": {"a": 1}, "headers": {"X-Key": 5}, "timeout": 2.5}
    )
    assert handler.base_url == "https://api.example.com/v1"
    assert handler.params == {"a": 1}
    assert handler.headers["X-Key"] == "5"
    assert handler.timeout == 2.5


def test_default_process_is_not_implemented(server_url: str, step: StepView) -> None:
    with pytest.raises(NotImplementedError, match="process"):
        ApiStepHandler({"url": server_url}).process(TASK, SEQUENCE, step)


# -- the client ----------------------------------------------------------------------------------


def test_client_is_lazy_cached_and_configured(server_url: str) -> None:
    handler = ApiStepHandler({"url": server_url, "timeout": 5})
    assert handler._client is None
    client = handler.client
    assert handler.client is client
    assert isinstance(client, httpx.Client)
    assert str(client.base_url).rstrip("/") == server_url
    assert client.timeout.read == 5.0
    handler.close()
    assert client.is_closed
    fresh = handler.client
    assert fresh is not client and not fresh.is_closed
    handler.close()
    handler.close()  # idempotent


def test_close_without_client_is_a_no_op(server_url: str) -> None:
    ApiStepHandler({"url": server_url}).close()


def test_build_client_can_be_overridden(server_url: str, step: StepView) -> None:
    class Custom(GetHandler):
        def build_client(self) -> httpx.Client:
            client = super().build_client()
            client.headers["X-Built"] = "yes"
            return client

    run(Custom(server_url, "/echo"), step)
    assert step.results["headers"]["x-built"] == "yes"


def test_default_headers_and_params_are_sent(server_url: str, step: StepView) -> None:
    handler = GetHandler(
        server_url,
        "/echo",
        params={"api_key": "k", "mode": "test"},
        headers={"X-Token": "t", "Accept": "text/*"},
    )
    run(handler, step)
    echo = step.results
    assert echo["method"] == "GET"
    assert echo["query"] == {"api_key": ["k"], "mode": ["test"]}
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["accept"] == "text/*"
    assert echo["headers"]["x-token"] == "t"


def test_request_params_and_json_body_merge_with_defaults(server_url: str, step: StepView) -> None:
    class Post(ApiStepHandler):
        def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
            return self.client.post("/echo", params={"extra": "1"}, json=task.context)

    run(Post({"url": server_url + "/api", "params": {"api_key": "k"}}), step)
    assert step.results["method"] == "POST"
    assert step.results["path"] == "/echo"  # Faraday's rule: a leading '/' replaces the base path
    assert step.results["query"] == {"api_key": ["k"], "extra": ["1"]}
    assert step.results["body"] == '{"id":5}'


def test_handle_closes_the_client(server_url: str, step: StepView) -> None:
    handler = GetHandler(server_url, "/ok")
    client = handler.client
    handler.handle(TASK, SEQUENCE, step)
    assert client.is_closed
    assert not handler.client.is_closed  # a new one on demand
    handler.close()


# -- success -------------------------------------------------------------------------------------


def test_json_response_body_becomes_the_results(server_url: str, step: StepView) -> None:
    call(server_url, "/ok", step)
    assert step.results == {"ok": True, "items": [1, 2]}


def test_non_json_response_stores_status_and_text(server_url: str, step: StepView) -> None:
    call(server_url, "/created", step)
    assert step.results == {"status": 201, "body": "created"}


def test_invalid_json_falls_back_to_status_and_text(server_url: str, step: StepView) -> None:
    call(server_url, "/bad-json", step)
    assert step.results == {"status": 200, "body": "{not json"}


def test_results_set_by_process_are_kept(server_url: str, step: StepView) -> None:
    class Manual(GetHandler):
        def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
            response = super().process(task, sequence, step)
            step.results = {"manual": True}
            return response

    run(Manual(server_url, "/ok"), step)
    assert step.results == {"manual": True}


def test_response_results_can_be_overridden(server_url: str, step: StepView) -> None:
    class Shaped(GetHandler):
        def response_results(self, response: httpx.Response | Any) -> Any:
            return {"count": len(response.json()["items"])}

    run(Shaped(server_url, "/ok"), step)
    assert step.results == {"count": 2}


def test_non_response_output_is_stored_as_is(server_url: str, step: StepView) -> None:
    handler = ApiStepHandler({"url": server_url})
    handler.process_results(step, ["plain", "value"], {})
    assert step.results == ["plain", "value"]
    handler.process_results(step, {"no_status": 1}, ["plain", "value"])
    assert step.results == {"no_status": 1}


# -- retryable statuses --------------------------------------------------------------------------


def test_429_is_retryable_with_retry_after_seconds(server_url: str, step: StepView) -> None:
    with pytest.raises(RetryableError) as info:
        call(server_url, "/throttled", step)
    error = info.value
    assert str(error) == "API call failed with retryable status 429"
    assert error.retry_after == 7.0
    assert error.context["status"] == 429
    assert error.context["url"] == server_url + "/throttled"
    assert error.context["body"] == "slow down"
    assert error.context["headers"]["retry-after"] == "7"
    assert step.results == {}


def test_503_is_retryable_with_http_date_retry_after(server_url: str, step: StepView) -> None:
    with pytest.raises(RetryableError) as info:
        call(server_url, "/unavailable", step)
    error = info.value
    assert str(error) == "API call failed with retryable status 503"
    assert error.retry_after is not None and 8 <= error.retry_after <= 11
    assert error.context["status"] == 503


@pytest.mark.parametrize("path", ["/boom", "/status/502", "/status/418", "/redirect"])
def test_other_statuses_are_retryable_server_errors_without_retry_after(
    server_url: str, path: str, step: StepView
) -> None:
    with pytest.raises(RetryableError) as info:
        call(server_url, path, step)
    error = info.value
    status = error.context["status"]
    assert str(error).startswith(f"API call failed with server error {status}: ")
    assert error.retry_after is None
    assert not isinstance(error, PermanentError)


def test_server_error_message_includes_the_body(server_url: str, step: StepView) -> None:
    with pytest.raises(RetryableError, match="server error 500: internal boom"):
        call(server_url, "/boom", step)


def test_long_bodies_are_truncated(server_url: str, step: StepView) -> None:
    with pytest.raises(RetryableError) as info:
        call(server_url, "/long-error", step)
    assert len(info.value.context["body"]) == 2048
    assert str(info.value) == "API call failed with server error 500: " + "x" * 500


# -- permanent statuses --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent(server_url: str, status: int, step: StepView) -> None:
    with pytest.raises(PermanentError) as info:
        call(server_url, f"/status/{status}", step)
    error = info.value
    assert str(error) == f"API call failed with permanent status {status}: error body {status}"
    assert error.error_code == f"HTTP_{status}"
    assert error.context["status"] == status
    assert error.context["body"] == f"error body {status}"
    assert step.results == {}


# -- transport errors ----------------------------------------------------------------------------


def test_connection_errors_propagate_from_process(step: StepView) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = GetHandler(f"http://127.0.0.1:{port}", "/ok")
    with pytest.raises(httpx.ConnectError):
        handler.process(TASK, SEQUENCE, step)
    handler.close()


def test_timeouts_propagate_from_process(server_url: str, step: StepView) -> None:
    handler = GetHandler(server_url, "/slow", timeout=0.1)
    with pytest.raises(httpx.ReadTimeout):
        handler.process(TASK, SEQUENCE, step)
    handler.close()


# -- dict responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_dict_response_retry_after_is_case_insensitive(header: str, step: StepView) -> None:
    handler = ApiStepHandler({"url": "http://example.com"})
    with pytest.raises(RetryableError) as info:
        handler.check_response({"status": 429, "headers": {header: "3"}})
    assert info.value.retry_after == 3.0
    assert info.value.context["status"] == 429


def test_dict_response_without_retry_after(step: StepView) -> None:
    handler = ApiStepHandler({"url": "http://example.com"})
    with pytest.raises(RetryableError) as info:
        handler.check_response({"status": "503"})
    assert info.value.retry_after is None


def test_dict_response_permanent_and_success(step: StepView) -> None:
    handler = ApiStepHandler({"url": "http://example.com"})
    with pytest.raises(PermanentError, match="permanent status 404: nope") as info:
        handler.check_response({"status": 404, "body": "nope", "url": "http://example.com/x"})
    assert info.value.error_code == "HTTP_404"
    assert info.value.context["url"] == "http://example.com/x"
    handler.process_results(step, {"status": 200, "body": {"id": 1}}, {})
    assert step.results == {"status": 200, "body": {"id": 1}}


def test_dict_response_with_a_non_integer_status_is_a_type_error(step: StepView) -> None:
    with pytest.raises(TypeError, match="status"):
        ApiStepHandler({"url": "http://example.com"}).check_response({"status": "teapot"})


def test_response_without_a_request_has_no_url(step: StepView) -> None:
    handler = ApiStepHandler({"url": "http://example.com"})
    with pytest.raises(PermanentError) as info:
        handler.check_response(httpx.Response(400, text="bad"))
    assert info.value.context["url"] is None
