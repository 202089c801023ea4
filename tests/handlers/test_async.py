"""Async step handlers: ``async def process`` on the app's event loop, timeouts as cancellation, async API client."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from opentelemetry import trace

from tasker import Tasker, TaskRequest
from tasker.errors import RetryableError, StepTimeoutError
from tasker.handlers import AsyncApiStepHandler, StepHandler
from tasker.telemetry import TelemetrySubscriber
from tasker.views import StepSequence, StepView, TaskView
from tests.telemetry.conftest import new_provider

#: Tracer providers the handlers' own spans go to (tests never set the global one).
PROVIDERS: dict[str, Any] = {}
#: Observations the handlers record: (step name, attempt, what happened).
SEEN: list[tuple[str, int, str]] = []
TASK = TaskView(task_id=1, name="t", namespace="ns", version="1.0.0", status="in_progress", context={})
SEQUENCE = StepSequence([], lambda name: None, list)


class Fetch(StepHandler):
    """Awaits (yielding to the loop) and reports the thread it ran on."""

    async def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        await asyncio.sleep(0)
        return {"thread": threading.current_thread().name, "context": task.context}


class HangsOnce(StepHandler):
    """The first attempt waits forever (until cancelled); later attempts return at once."""

    async def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        if step.attempts == 0:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                SEEN.append((step.name, step.attempts + 1, "cancelled"))
                raise
        return {"attempt": step.attempts + 1}


class TracedAsync(StepHandler):
    """Starts a span of its own inside an async process."""

    async def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        tracer = trace.get_tracer(__name__, tracer_provider=PROVIDERS[self.config["provider"]])
        with tracer.start_as_current_span("handler.async_call") as span:
            await asyncio.sleep(0)
            return {"span_id": f"{span.get_span_context().span_id:016x}"}


def _template(handler: str, **step: Any) -> dict[str, Any]:
    return {
        "name": "aio", "version": "1.0.0",
        "step_templates": [{"name": "a", "handler_class": f"{__name__}:{handler}", **step},
                           {"name": "b", "handler_class": f"{__name__}:Fetch", "depends_on_step": "a"}],
    }  # fmt: skip


def _run(app: Tasker, tmpl: dict[str, Any]) -> tuple[int, str]:
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="aio", version="1.0.0", context={"x": 1}))
    return task.task_id, app.run_until_done(task.task_id, timeout=30)


def test_async_handlers_complete_on_the_apps_loop(app: Tasker) -> None:
    task_id, status = _run(app, _template("Fetch"))
    assert status == "complete"
    results = [s.results for s in app.get_task(task_id).steps]
    assert results == [{"thread": "tasker-async-handlers", "context": {"x": 1}}] * 2
    app.shutdown()
    assert not any(t.name == "tasker-async-handlers" for t in threading.enumerate())


def test_a_timeout_cancels_the_coroutine_and_the_step_is_retried(app: Tasker) -> None:
    SEEN.clear()
    task_id, status = _run(app, _template("HangsOnce", timeout_seconds=0.2, default_retry_limit=2))
    assert status == "complete"
    assert SEEN == [("a", 1, "cancelled")]  # cancelled on the loop, not abandoned in a thread
    assert not [t for t in threading.enumerate() if t.name.startswith("tasker-step-")]
    assert 'tasker_step_timeouts_total{namespace="default",step="a",task="aio",version="1.0.0"} 1.0' in (
        app.metrics.render()
    )
    step = app.get_task(task_id).step("a")
    assert (step.attempts, step.results) == (2, {"attempt": 2})


def test_a_step_out_of_attempts_fails_with_the_timeout(app: Tasker) -> None:
    task_id, status = _run(app, _template("HangsOnce", timeout_seconds=0.1, default_retry_limit=1))
    assert status == "error"
    step = app.get_task(task_id).step("a")
    assert step.results["error_class"] == "StepTimeoutError"
    assert step.results["error"] == "step a timed out after 0.1s"


def test_spans_of_an_async_handler_nest_under_the_step_span(app: Tasker) -> None:
    provider, exporter = new_provider()
    PROVIDERS["async"] = provider
    app.subscribe(TelemetrySubscriber(tracer_provider=provider))  # type: ignore[arg-type]
    try:
        task_id, status = _run(app, _template("TracedAsync", handler_config={"provider": "async"}))
    finally:
        provider.shutdown()
    assert status == "complete"
    spans = exporter.get_finished_spans()
    [handler_span] = [s for s in spans if s.name == "handler.async_call"]
    [step_a] = [
        s for s in spans if s.name == "tasker.step.execution" and (s.attributes or {}).get("tasker.step.name") == "a"
    ]
    assert handler_span.parent is not None
    assert handler_span.parent.span_id == step_a.context.span_id
    assert handler_span.context.trace_id == step_a.context.trace_id
    assert app.get_task(task_id).step("a").results == {"span_id": f"{handler_span.context.span_id:016x}"}


def test_outside_the_engine_an_async_handler_runs_on_a_loop_of_its_own() -> None:
    step = StepView(step_id=1, task_id=1, name="a", status="in_progress", attempts=0, retry_limit=1,
                    retryable=True, results={})  # fmt: skip
    Fetch().handle(TASK, SEQUENCE, step)
    assert step.results["context"] == {}
    assert step.results["thread"] != "tasker-async-handlers"  # not an app's loop: none is bound
    hanging = HangsOnce()
    hanging.timeout = 0.05
    with pytest.raises(StepTimeoutError):
        hanging.handle(TASK, SEQUENCE, step)


# -- AsyncApiStepHandler ---------------------------------------------------------------------------------------


class AsyncGet(AsyncApiStepHandler):
    """GETs ``handler_config['path']`` with the async client."""

    async def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return await self.async_client.get(self.config["path"])

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"status": process_output.status_code, "body": process_output.json()}


def _step() -> StepView:
    return StepView(step_id=1, task_id=1, name="s", status="in_progress", attempts=0, retry_limit=3,
                    retryable=True, results={})  # fmt: skip


def test_async_api_handler_joins_paths_classifies_and_closes(server_url: str) -> None:
    step = _step()
    handler = AsyncGet({"url": server_url + "/cart", "path": "/carts/1/echo", "params": {"k": "v"}})
    handler.handle(TASK, SEQUENCE, step)
    assert step.results["body"]["path"] == "/carts/1/echo"
    assert step.results["body"]["query"] == {"k": ["v"]}
    assert handler._async_client is None  # closed and dropped on the loop
    with pytest.raises(RetryableError, match="server error 500") as info:
        AsyncGet({"url": server_url, "path": "/boom", "retry_delay": 3, "enable_exponential_backoff": False}).handle(
            TASK, SEQUENCE, _step()
        )
    assert info.value.retry_after == 3.0


def test_async_api_handler_runs_in_the_engine(app: Tasker, server_url: str) -> None:
    app.register_task_template({
        "name": "aio_api", "version": "1.0.0",
        "step_templates": [{"name": "get", "handler_class": f"{__name__}:AsyncGet",
                            "handler_config": {"url": server_url + "/base/", "path": "x/echo"}}],
    })  # fmt: skip
    task = app.create_task(TaskRequest(name="aio_api", version="1.0.0", context={"x": 1}))
    assert app.run_until_done(task.task_id) == "complete"
    assert app.get_task(task.task_id).step("get").results["body"]["path"] == "/base/x/echo"


def test_outside_the_engine_an_async_handler_also_runs_under_a_running_loop() -> None:
    async def caller() -> StepView:
        step = _step()
        Fetch().handle(TASK, SEQUENCE, step)  # handle() is synchronous: the coroutine runs on a private loop
        return step

    with ThreadPoolExecutor(1) as thread:  # a thread of its own: pytest plugins may run a loop in this one
        step = thread.submit(asyncio.run, caller()).result()
    assert step.results["thread"].startswith("tasker-async-handler")
