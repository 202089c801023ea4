"""``tasker demo``: run the bundled order workflow and print its steps."""

from __future__ import annotations

import importlib.resources
import shutil
from collections.abc import Callable, Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import make_url

from tasker import Tasker, TaskRequest, TaskView
from tasker.config import LoadedConfig
from tasker.telemetry import TelemetrySubscriber, render_waterfall

Echo = Callable[[str], None]

DEMO_CONTEXT = {
    "order_id": 1001,
    "email": "ada@example.com",
    "items": [
        {"sku": "KB-01", "price": 89.0, "quantity": 1},
        {"sku": "MS-02", "price": 25.5, "quantity": 2},
    ],
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def print_task(view: TaskView, echo: Echo, *, width: int = 80, durations: Mapping[str, float] | None = None) -> None:
    """A table of the task's steps: status, attempts and the duration of the latest attempt, ``width`` wide.

    ``durations`` (step name -> seconds) replaces the durations read from the steps (the demo passes its
    spans', so the table and the waterfall agree).
    """
    echo(f"task {view.task_id} {view.full_name}: {view.status}")
    name_width = max([len("step"), *(len(s.name) for s in view.steps)])
    echo(f"{'step':<{name_width}}  {'status':<12} {'attempts':>8} {'duration':>10}")
    for step in view.steps:
        seconds = (durations or {}).get(step.name)
        if seconds is None and step.processed_at and step.started_at:
            seconds = (step.processed_at - step.started_at).total_seconds()
        shown = _ms(seconds) if seconds is not None else "-"
        echo(f"{step.name:<{name_width}}  {step.status:<12} {step.attempts:>8} {shown:>10}")
        if step.last_error and step.status != "complete":
            echo(f"{'':<{name_width}}  error: {step.last_error.splitlines()[0]}"[:width])


def _last_attempts(spans: list[ReadableSpan]) -> dict[str, float]:
    """Step name -> duration of its latest attempt's span."""
    latest: dict[str, tuple[int, float]] = {}
    for span in spans:
        attributes = span.attributes or {}
        if span.name != "tasker.step.execution" or span.start_time is None or span.end_time is None:
            continue
        name, attempt = str(attributes.get("tasker.step.name")), int(str(attributes.get("tasker.step.attempt", 0)))
        if attempt >= latest.get(name, (-1, 0.0))[0]:
            latest[name] = (attempt, (span.end_time - span.start_time) / 1e9)
    return {name: seconds for name, (_, seconds) in latest.items()}


def run_demo(loaded: LoadedConfig, database_url: str, echo: Echo, width: int | None = None) -> int:
    """Run the example order workflow on ``database_url``; returns the process exit code.

    Output fits ``width`` columns (default: the terminal's, 80 when unknown).
    """
    width = width or shutil.get_terminal_size((80, 24)).columns
    template_path = importlib.resources.files("tasker.examples.order") / "order_process.yaml"
    base = loaded.config
    config = base.model_copy(update={"backoff": base.backoff.model_copy(update={"buffer_seconds": 0})})
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tasker-demo"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with Tasker(database_url, config=config) as app:
        app.subscribe(TelemetrySubscriber(tracer_provider=provider))
        app.migrate()
        app.load_task_templates(str(template_path), replace=True)
        shown_url = make_url(database_url).render_as_string(hide_password=True)
        echo(f"database: {shown_url}")
        echo("workflow: validate_order -> {reserve_inventory, charge_payment} -> ship_order")
        echo("          -> notify_customer")
        echo("charge_payment fails on its first attempt (gateway timeout) and is retried.\n")
        task = app.create_task(
            TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=DEMO_CONTEXT)
        )
        status = app.run_until_done(task.task_id, timeout=60)
        finished = list(spans.get_finished_spans())
        print_task(app.get_task(task.task_id), echo, width=width, durations=_last_attempts(finished))
        echo("\ntrace (one trace per task; OpenTelemetry spans, durations to scale):")
        bar = max(10, min(50, width - 70))
        echo(render_waterfall(finished, width=bar, line_width=width))
        echo(f"\noutcome: task {task.task_id} {status}")
        echo(f"next: tasker tasks show {task.task_id} --database-url {shown_url}")
    provider.shutdown()
    return 0 if status == "complete" else 1
