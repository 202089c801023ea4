"""Apps traced into an in-memory exporter through a provider of their own (never the global one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasker import Tasker, TaskRequest
from tasker.telemetry import TelemetrySubscriber
from tests.telemetry import handlers


@dataclass
class Traced:
    """An app, the provider its TelemetrySubscriber writes to, and the exported spans."""

    app: Tasker
    provider: TracerProvider
    exporter: InMemorySpanExporter
    subscriber: TelemetrySubscriber
    name: str
    registered: set[str] = field(default_factory=set)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans (in end order), optionally only those called ``name``."""
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def create(self, tmpl: dict[str, Any], context: dict[str, Any] | None = None, **request: Any) -> int:
        """Register ``tmpl`` (once) and create a task of it."""
        if tmpl["name"] not in self.registered:
            self.app.register_task_template(tmpl)
            self.registered.add(tmpl["name"])
        task = self.app.create_task(
            TaskRequest(name=tmpl["name"], version=tmpl["version"], context=context or {"order_id": 1}, **request)
        )
        return task.task_id

    def run(self, tmpl: dict[str, Any], context: dict[str, Any] | None = None, **request: Any) -> tuple[int, str]:
        """Create a task of ``tmpl`` and run it to a terminal state."""
        task_id = self.create(tmpl, context, **request)
        return task_id, self.app.run_until_done(task_id, timeout=30)


def new_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider exporting synchronously to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def make_traced(make_app: Callable[..., Tasker]) -> Iterator[Callable[..., Traced]]:
    """Build traced apps: ``make_traced(config=None, propagation="parent")``."""
    providers: list[TracerProvider] = []

    def factory(config: dict[str, Any] | None = None, propagation: str = "parent") -> Traced:
        provider, exporter = new_provider()
        providers.append(provider)
        name = f"p{len(handlers.PROVIDERS)}"
        handlers.PROVIDERS[name] = provider
        subscriber = TelemetrySubscriber(tracer_provider=provider, propagation=propagation)  # type: ignore[arg-type]
        app = make_app(config)
        app.subscribe(subscriber)
        return Traced(app, provider, exporter, subscriber, name)

    yield factory
    for provider in providers:
        provider.shutdown()
    handlers.PROVIDERS.clear()


@pytest.fixture
def traced(make_traced: Callable[..., Traced]) -> Traced:
    """A traced app in parent mode."""
    return make_traced()
