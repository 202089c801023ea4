"""docs/handlers.md stays true: every Python block runs as a script and prints the output shown after it.

Conventions (as in tests/core/test_docs.py): a ```python block whose first line is ``# file: NAME`` is a file
the reader saves next to the scripts (it is written to the working directory of every later block); a
```text block right after a ```python block is exactly what that script prints. Each script runs on its own,
in a fresh temporary directory, with ``runpy.run_path(..., run_name="__main__")`` like ``python example.py``,
so templates can name the script's handler classes ``__main__:Class``.

The other tests check the claims of the page's prose that the examples rely on.
"""

from __future__ import annotations

import runpy
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasker import StepHandler, StepSequence, StepView, Tasker, TaskRequest, TaskView
from tasker.errors import EventError, PermanentError, RetryableError
from tasker.handlers import ApiStepHandler
from tests.support.docs import blocks

DOC = "handlers.md"
STAND_IN_API = "fake_orders_api"


def scripts() -> list[int]:
    """Indexes (in ``blocks(DOC)``) of the Python blocks that are scripts to run, not files to save."""
    return [i for i, b in enumerate(blocks(DOC)) if b.language == "python" and not b.filename]


def test_the_page_has_its_examples() -> None:
    found = blocks(DOC)
    assert len(scripts()) >= 6
    assert STAND_IN_API + ".py" in {b.filename for b in found}
    for index in scripts():  # every script shows what it prints
        following = found[index + 1] if index + 1 < len(found) else None
        assert following is not None and following.language == "text", f"handlers.md:{found[index].line}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory on sys.path; modules imported from it are forgotten (and the API stopped)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    before = set(sys.modules)
    threads_before = set(threading.enumerate())
    yield tmp_path
    stand_in = sys.modules.get(STAND_IN_API)
    if stand_in is not None and getattr(stand_in, "_server", None) is not None:
        stand_in.stop()
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(5)


@pytest.mark.parametrize("index", scripts(), ids=lambda i: f"line{blocks(DOC)[i].line}")
def test_python_block_runs(index: int, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = blocks(DOC)
    for saved in found[:index]:
        if saved.filename:
            (workdir / saved.filename).write_text(saved.code, encoding="utf-8")
    block = found[index]
    script = workdir / "example.py"
    script.write_text(block.code, encoding="utf-8")
    capsys.readouterr()
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    expected = found[index + 1].code
    assert printed.splitlines() == expected.splitlines(), f"handlers.md:{block.line} printed:\n{printed}"
    stand_in = sys.modules.get(STAND_IN_API)
    if stand_in is not None:  # the default headers went with every request ("headers" in the config table)
        assert stand_in.received
        for _method, _path, headers in stand_in.received:
            assert headers["Accept"] == "application/json"
            assert headers["Content-Type"] == "application/json"


def test_create_order_request_goes_to_the_documented_url(workdir: Path) -> None:
    """The CreateOrder block really POSTs to <url>/orders with the configured params and headers."""
    found = blocks(DOC)
    index = next(i for i in scripts() if "class CreateOrder" in found[i].code)
    for saved in found[:index]:
        if saved.filename:
            (workdir / saved.filename).write_text(saved.code, encoding="utf-8")
    (workdir / "example.py").write_text(found[index].code, encoding="utf-8")
    runpy.run_path(str(workdir / "example.py"), run_name="__main__")
    received = sys.modules[STAND_IN_API].received
    assert [(method, path) for method, path, _ in received] == [("POST", "/api/v2/orders?source=tasker")]
    assert received[0][2]["Authorization"] == "Bearer ..."


# -- prose claims ----------------------------------------------------------------------------------------------


def test_template_snippet_config_is_valid_and_paths_are_joined_as_documented() -> None:
    """The YAML step's handler_config builds an ApiStepHandler; `orders` requests <url>/orders, `/orders` /orders."""
    snippet = next(b.code for b in blocks(DOC) if b.language == "yaml" and "name: create_order" in b.code)
    step = yaml.safe_load(snippet)[0]
    assert step["handler_class"] == "myapp.orders.handlers:CreateOrder"
    handler = ApiStepHandler(step["handler_config"])
    assert handler.timeout == 10.0
    assert handler.headers == {
        "Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer ...",
    }  # fmt: skip
    try:
        appended = handler.client.build_request("POST", "orders")
        replaced = handler.client.build_request("POST", "/orders")
    finally:
        handler.close()
    assert str(appended.url) == "https://orders.example.com/api/v2/orders?source=tasker"
    assert str(replaced.url) == "https://orders.example.com/orders?source=tasker"


class _Reserve(StepHandler):
    custom_events = [{"name": "inventory.reserved", "description": "Stock was reserved"}]

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"config": self.config}


def test_custom_events_are_registered_with_the_template_and_config_defaults_to_empty(tmp_path: Path) -> None:
    with Tasker(f"sqlite:///{tmp_path}/claims.db") as app:
        app.migrate()
        with pytest.raises(EventError):
            app.events.subscribe("inventory.reserved", print)
        app.register_task_template({
            "name": "claims", "namespace_name": "docs", "version": "1.0.0",
            "step_templates": [{"name": "reserve", "handler_class": f"{__name__}:_Reserve"}],
        })  # fmt: skip
        app.events.subscribe("inventory.reserved", print)  # registered now
        task = app.create_task(TaskRequest(name="claims", namespace="docs", version="1.0.0"))
        assert app.run_until_done(task.task_id) == "complete"
        assert app.get_task(task.task_id).step("reserve").results == {"config": {}}
    with pytest.raises(RuntimeError):
        _Reserve().publish_event("inventory.reserved", {})
    with pytest.raises(NotImplementedError):
        StepHandler().process(task, StepSequence([], lambda name: None, list), app.get_task(task.task_id).steps[0])


class _Fails(StepHandler):
    """Fails as ``handler_config["raise"]`` says, after setting partial results."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        step.results = {**(step.results or {}), "seen": step.attempts + 1}
        kind = self.config["raise"]
        if kind == "retry_after":
            raise RetryableError("slow down", retry_after=3600)
        if kind == "permanent":
            raise PermanentError("no", error_code="NOPE")
        raise ValueError("boom")


def _run_failing(tmp_path: Path, kind: str, **step: Any) -> StepView:
    config = {"backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0}}
    if kind == "retry_after":
        config["backoff"]["max_backoff_seconds"] = 7
    with Tasker(f"sqlite:///{tmp_path}/errors.db", config=config) as app:
        app.migrate()
        app.register_task_template({
            "name": "fails", "namespace_name": "docs", "version": "1.0.0",
            "step_templates": [
                {"name": "s", "handler_class": f"{__name__}:_Fails", "handler_config": {"raise": kind}, **step},
            ],
        })  # fmt: skip
        task = app.create_task(TaskRequest(name="fails", namespace="docs", version="1.0.0"))
        status = app.run_task(task.task_id) if kind == "retry_after" else app.run_until_done(task.task_id)
        assert status == ("pending" if kind == "retry_after" else "error")
        return app.get_task(task.task_id).step("s")


def test_retry_after_is_capped_by_max_backoff(tmp_path: Path) -> None:
    step = _run_failing(tmp_path, "retry_after")
    assert (step.status, step.attempts, step.backoff_request_seconds) == ("error", 1, 7)


def test_permanent_error_is_not_retried_and_keeps_partial_results(tmp_path: Path) -> None:
    step = _run_failing(tmp_path, "permanent")
    assert (step.attempts, step.retryable) == (1, False)
    assert step.results["seen"] == 1  # set by the handler before failing
    assert step.results["error"] == "no"
    assert step.results["error_code"] == "NOPE"
    assert step.results["error_class"].endswith("PermanentError")
    assert "backtrace" in step.results


@pytest.mark.parametrize(("step_options", "attempts"), [({}, 3), ({"default_retryable": False}, 1)])
def test_retry_limit_counts_every_attempt(tmp_path: Path, step_options: dict[str, Any], attempts: int) -> None:
    step = _run_failing(tmp_path, "exception", **step_options)
    assert step.attempts == attempts
    assert step.results["seen"] == attempts  # each attempt read the previous one's partial results
    assert step.results["error_class"].endswith("ValueError")
