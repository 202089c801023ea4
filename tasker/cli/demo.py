"""``tasker demo``: run the bundled order workflow and print its steps."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasker import Tasker, TaskRequest, TaskView
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


def print_task(view: TaskView, echo: Echo) -> None:
    """A table of the task's steps: status, attempts, duration."""
    echo(f"task {view.task_id} {view.full_name}: {view.status}")
    echo(f"{'step':<20} {'status':<12} {'attempts':>8} {'duration':>10}")
    for step in view.steps:
        duration = "-"
        if step.processed_at and step.started_at:
            duration = f"{(step.processed_at - step.started_at).total_seconds() * 1000:.0f} ms"
        echo(f"{step.name:<20} {step.status:<12} {step.attempts:>8} {duration:>10}")
        error = step.results.get("error") if isinstance(step.results, dict) else None
        if error and step.status != "complete":
            echo(f"{'':<20} error: {error}")


def run_demo(database_url: str, echo: Echo) -> int:
    """Run the example order workflow on ``database_url``; returns the process exit code."""
    template_path = importlib.resources.files("tasker.examples.order") / "order_process.yaml"
    config = {"backoff": {"buffer_seconds": 0}}
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tasker-demo"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with Tasker(database_url, config=config) as app:
        app.subscribe(TelemetrySubscriber(tracer_provider=provider))
        app.migrate()
        app.load_task_templates(str(template_path))
        echo(f"database: {database_url}")
        echo("workflow: validate_order -> {reserve_inventory, charge_payment} -> ship_order -> notify_customer")
        echo("charge_payment fails on its first attempt (gateway timeout) and is retried.\n")
        task = app.create_task(
            TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=DEMO_CONTEXT)
        )
        status = app.run_until_done(task.task_id, timeout=60)
        print_task(app.get_task(task.task_id), echo)
        echo("\ntrace (one trace per task; OpenTelemetry spans, durations to scale):")
        echo(render_waterfall(spans.get_finished_spans(), width=50))
        echo(f"\noutcome: task {task.task_id} {status}")
    provider.shutdown()
    return 0 if status == "complete" else 1
