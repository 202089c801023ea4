"""What orchestration needs from its app, bundled: database, config, templates, events, metrics."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasker.config import TaskerConfig
from tasker.db import Database
from tasker.handlers.aio import EventLoop
from tasker.templates import StepTemplate, TaskTemplate, TemplateRegistry
from tasker.views import StepView

if TYPE_CHECKING:
    from tasker.events import EventBus
    from tasker.metrics import MetricsBackend, OTelMessagingMetrics


@dataclass
class Runtime:
    """The collaborators of one app's orchestration."""

    db: Database
    config: TaskerConfig
    templates: TemplateRegistry
    events: EventBus
    metrics: MetricsBackend
    worker_id: str
    #: Called when a task is left pending: (task_id, delay_seconds). The executor schedules a re-run.
    schedule: Callable[[int, float], None]
    rng: random.Random = field(default_factory=random.Random)
    #: Sends a reserved step to another worker: (task_id, step_id, claim token). None runs steps in this process.
    dispatch: Callable[[int, int, str], None] | None = None
    #: OpenTelemetry messaging metrics, when the app was given a MeterProvider.
    otel: OTelMessagingMetrics | None = None
    #: The event loop async step handlers run on (started on first use, closed at shutdown).
    aio: EventLoop = field(default_factory=EventLoop)


@dataclass
class TaskInfo:
    """A task row joined with its template identity, loaded once per pass."""

    task_id: int
    name: str
    namespace: str
    version: str
    status: str
    context: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    run_at: datetime | None
    trace_context: dict[str, Any] | None
    template: TaskTemplate

    @property
    def destination(self) -> str:
        """The messaging destination of this task: ``namespace.name``."""
        return f"{self.namespace}.{self.name}"

    @property
    def full_name(self) -> str:
        """``namespace.name@version``."""
        return f"{self.namespace}.{self.name}@{self.version}"

    @property
    def labels(self) -> tuple[str, str, str]:
        """(namespace, task, version) metric labels."""
        return (self.namespace, self.name, self.version)

    def step_template(self, name: str) -> StepTemplate:
        """The template of step ``name`` (constant time, whatever the size of the task)."""
        return self.template.steps_by_name[name]

    def parents(self, name: str) -> tuple[str, ...]:
        """Names of the steps ``name`` depends on."""
        return self.template.parents.get(name, ())


def step_view(row: Any, parents: tuple[str, ...] = ()) -> StepView:
    """A detached snapshot of a step row (ORM object or Core row)."""
    return StepView(
        step_id=row.workflow_step_id,
        task_id=row.task_id,
        name=row.name,
        status=row.status,
        attempts=row.attempts,
        retry_limit=row.retry_limit,
        retryable=row.retryable,
        results=row.results,
        inputs=row.inputs,
        processed=row.processed,
        processed_at=row.processed_at,
        started_at=row.started_at,
        last_attempted_at=row.last_attempted_at,
        next_retry_at=row.next_retry_at,
        backoff_request_seconds=row.backoff_request_seconds,
        in_process=row.in_process,
        skippable=row.skippable,
        parent_names=parents,
    )
