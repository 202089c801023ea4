"""docs/deployment.md stays true: its app module and producer run, without a broker, worker or collector to start.

The ```python block whose first line is ``# file: mypkg/tasks.py`` is saved (as the reader would); the other
block runs as a script (``runpy.run_path(..., run_name="__main__")``) in that directory. The environment the page
exports points at a SQLite file, Kombu's in-memory broker (``memory://``) and a stub OTLP collector on 127.0.0.1,
so the test can read the message the producer sent, run it the way a worker would, and see the spans arrive.
"""

from __future__ import annotations

import re
import runpy
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tasker import Tasker
from tasker.config import CeleryConfig
from tasker.executors.celery import RUN_STEP, RUN_TASK, SWEEP, CeleryExecutor, get_tasker
from tests.support.otel import reset_global_providers

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
_PYTHON = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)

TEMPLATE = """\
name: order_process
namespace_name: ecommerce
version: 1.0.0
schema: {type: object, required: [order_id], properties: {order_id: {type: integer}}}
step_templates:
  - name: confirm_order
    handler_class: mypkg.handlers:ConfirmOrder
"""

HANDLERS = """\
from tasker import StepHandler


class ConfirmOrder(StepHandler):
    def process(self, task, sequence, step):
        return {"confirmed": task.context["order_id"]}
"""


def python_blocks() -> list[str]:
    return _PYTHON.findall(DOC.read_text(encoding="utf-8"))


class _Collector(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[list[str], str]]:
    """A stub OTLP/HTTP collector: yields (paths of the requests it received, its base URL)."""
    handler = type("Collector", (_Collector,), {"paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.paths, f"http://127.0.0.1:{server.server_port}"
    finally:
        reset_global_providers()  # the app installed providers exporting here: shut them down first
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: tuple[list[str], str]) -> Iterator[Path]:
    """The reader's project: mypkg/tasks.py from the page, a template and its handler; the page's environment."""
    blocks = python_blocks()
    module = blocks[0]
    assert module.startswith("# file: mypkg/tasks.py\n")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "tasks.py").write_text(module, encoding="utf-8")
    (tmp_path / "mypkg" / "handlers.py").write_text(HANDLERS, encoding="utf-8")
    (tmp_path / "config" / "tasks").mkdir(parents=True)
    (tmp_path / "config" / "tasks" / "order_process.yaml").write_text(TEMPLATE, encoding="utf-8")
    database_url = f"sqlite:///{tmp_path}/tasker.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TASKER_DATABASE_URL", database_url)
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector[1])
    with Tasker(database_url) as app:  # `tasker db upgrade` (section 1)
        app.migrate()
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
                del sys.modules[name]
        sys.modules.pop("mypkg", None)


def drain(celery_app: Any) -> list[Any]:
    """Take every message off the in-memory ``tasker`` queue."""
    messages = []
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("tasker")
        try:
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                message.ack()
                messages.append(message)
        finally:
            queue.close()
    return messages


def test_page_has_the_module_and_the_producer() -> None:
    blocks = python_blocks()
    assert len(blocks) == 2
    assert blocks[0].startswith("# file: mypkg/tasks.py\n")
    assert "from mypkg.tasks import tasker_app" in blocks[1]


def test_producer_sends_the_pass_a_worker_runs(project: Path, collector: tuple[list[str], str]) -> None:
    producer = project / "producer.py"
    producer.write_text(python_blocks()[1], encoding="utf-8")
    namespace = runpy.run_path(str(producer), run_name="__main__")
    task = namespace["task"]

    tasks_module = sys.modules["mypkg.tasks"]
    celery_app = tasks_module.celery_app
    app = tasks_module.tasker_app()
    try:
        # The app module's settings reached the per-process app and its executor.
        assert app is get_tasker(celery_app)
        assert isinstance(app.executor, CeleryExecutor)
        assert (app.executor.queue, app.executor.dispatch_steps) == ("tasker", True)
        assert app.config.execution.max_concurrent_steps == 4
        assert app.config.telemetry.exporter == "otlp"

        # "sends tasker.run_task(task_id) with the task span's W3C traceparent in the message headers"
        messages = drain(celery_app)
        assert [(m.headers["task"], m.payload[0]) for m in messages] == [(RUN_TASK, [task.task_id])]
        assert messages[0].headers["traceparent"] == app.executor.carrier(task.task_id)["traceparent"]

        # What a worker does with it: run the pass (and any message it sends) until the task is done.
        pending = messages
        while pending:
            for message in pending:
                celery_app.tasks[message.headers["task"]].apply(args=message.payload[0])
            pending = drain(celery_app)
        view = app.get_task(task.task_id)
        assert view.status == "complete"
        assert view.step("confirm_order").results == {"confirmed": 7}
    finally:
        app.shutdown()  # what worker_process_shutdown does: flush the spans
    assert "/v1/traces" in collector[0]


def test_create_celery_app_sets_up_what_the_page_lists(project: Path) -> None:
    import mypkg.tasks  # type: ignore[import-not-found]

    celery_app = mypkg.tasks.celery_app
    assert {RUN_TASK, RUN_STEP, SWEEP} <= set(celery_app.tasks)
    conf = celery_app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result is True
    assert conf.broker_url == "memory://"  # from $CELERY_BROKER_URL
    assert conf.task_default_queue == "tasker"


def test_a_producer_built_executor_is_bound_by_the_app(tmp_path: Path) -> None:
    """`CeleryExecutor(...)` passed as `Tasker(..., executor=...)` is bound to the app (trace headers)."""
    from celery import Celery

    celery_app = Celery("producer", broker="memory://", set_as_current=False)
    executor = CeleryExecutor(celery_app, queue="tasker", dispatch_steps=False)
    with Tasker(f"sqlite:///{tmp_path}/producer.db", executor=executor) as app:
        assert executor._app is app


def test_celery_config_reference_matches_the_defaults() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Configuration reference: `celery`", 1)[1]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", table, flags=re.MULTILINE))
    defaults = CeleryConfig()
    assert set(rows) == set(CeleryConfig.model_fields)
    for key, documented in rows.items():
        value = getattr(defaults, key)
        if isinstance(value, bool):
            assert documented == str(value).lower(), key
        elif isinstance(value, int | float):
            assert float(documented) == value, key
        else:
            assert documented == value, key
