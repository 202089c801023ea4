"""The Tasker application object: the one public entry point that wires every part together.

Each ``Tasker`` owns its database engine, template registry, event bus, metrics registry, executor and
step thread pool; two apps in one process share nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry.metrics import MeterProvider
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tasker.config import LoadedConfig, TaskerConfig, load_config, resolve_database_url
from tasker.db import Database
from tasker.encoding import check_json
from tasker.errors import (
    ConfigurationError,
    StoreError,
    TaskerError,
    TaskNotFoundError,
    TaskNotRetryableError,
    ValidationError,
)
from tasker.events import BaseSubscriber, Event, EventBus, EventCatalog, Masker
from tasker.executors import Executor, InlineExecutor
from tasker.handlers.annotations import annotate_task, task_annotations
from tasker.handlers.base import StepHandler
from tasker.handlers.task import TaskHandler, draft_task
from tasker.metrics import MetricsBackend, OTelMessagingMetrics
from tasker.metrics.database import DatabaseCollector
from tasker.models import Task
from tasker.models.base import utcnow
from tasker.models.queries import TaskFilter, TaskSummary, find_task, list_tasks, summarize, task_steps
from tasker.orchestration.coordinator import Coordinator
from tasker.orchestration.creation import (
    CatalogCache,
    identity_options,
    identity_strategy,
    insert_task,
    translate_integrity_error,
    validate_request,
)
from tasker.orchestration.operations import BYPASSED, DEFAULT_RETRY_REASON, TaskOperations, bypass_steps, check_bypass
from tasker.orchestration.payloads import step_payload, task_payload
from tasker.orchestration.readiness import ExecutionContext, execution_context
from tasker.orchestration.runtime import Runtime, TaskInfo, step_view
from tasker.request import TaskRequest
from tasker.state.states import ERROR, PENDING, RESOLVED_MANUALLY, STATES, TERMINAL_TASK_STATES
from tasker.telemetry.logs import apply_log_format, install_log_correlation, task_log_context
from tasker.telemetry.propagation import new_task_trace_context
from tasker.telemetry.setup import app_telemetry
from tasker.templates import StepTemplate, TaskTemplate, TemplateRegistry, load_templates, parse_template
from tasker.views import AnnotationView, StepSequence, TaskView

logger = logging.getLogger(__name__)


class TaskTimeoutError(TaskerError, TimeoutError):
    """``run_until_done`` gave up before the task reached a terminal state."""

    def __init__(self, task_id: int, status: str, timeout: float) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"task {task_id} still '{status}' after {timeout:g}s")


def _otel_metrics(meter_provider: MeterProvider | None, config: TaskerConfig) -> OTelMessagingMetrics | None:
    if meter_provider is None:
        return None
    return OTelMessagingMetrics(meter_provider, worker_name=config.metrics.worker_name)


def _celery_producer(settings: TaskerConfig) -> Executor:
    """An executor that sends passes to the Celery workers of ``settings.celery`` (needs the celery extra)."""
    try:
        from celery import Celery

        from tasker.executors.celery import CeleryExecutor
    except ImportError as exc:
        raise ConfigurationError(
            "executor 'celery' needs the celery extra: pip install '.[celery]' in a checkout of tasker"
        ) from exc
    celery = settings.celery
    producer = Celery("tasker", broker=os.environ.get("CELERY_BROKER_URL") or celery.broker_url, set_as_current=False)
    return CeleryExecutor(producer, queue=celery.queue, dispatch_steps=celery.dispatch_steps)


@dataclass
class RetryReport:
    """What :meth:`Tasker.retry_tasks` did: task ids re-queued, and refused ones with their status."""

    retried: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


#: Page size of bulk operations over list_tasks.
_PAGE = 200


class Tasker:
    """A workflow engine instance.

    >>> app = Tasker(database_url="sqlite:///tasker.db")        # doctest: +SKIP
    >>> app.migrate(); app.load_task_templates("config/tasks")  # doctest: +SKIP
    """

    def __init__(
        self,
        database_url: str | None = None,
        config: TaskerConfig | Mapping[str, Any] | None = None,
        *,
        executor: Executor | None = None,
        worker_id: str | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.config = TaskerConfig.coerce(dict(config) if isinstance(config, Mapping) else config)
        self.db = Database(
            resolve_database_url(database_url or self.config.database.url),
            pool_size=self.config.execution.max_concurrent_steps + 4,
            sqlite_synchronous=self.config.database.sqlite_synchronous,
        )
        self.templates = TemplateRegistry(self.config.templates.handler_aliases, self._register_handler_events)
        self.metrics = MetricsBackend(enabled=self.config.metrics.enabled, buckets=self.config.metrics.buckets)
        self.metrics.register_collector(DatabaseCollector(self.db))  # backlog and in-progress gauges, at scrape time
        #: The app's one redaction function for every sink: ``app.masker.redact(value)`` / ``.scrub(text)``.
        self.masker = Masker.from_config(self.config.events)
        self.events = EventBus(
            catalog=EventCatalog(),
            masker=self.masker,
            on_subscriber_error=lambda event, subscriber, _exc: self.metrics.subscriber_error(subscriber, event),
            slow_subscriber_seconds=self.config.events.slow_subscriber_seconds,
            on_slow_subscriber=lambda event, subscriber: self.metrics.subscriber_slow(subscriber, event),
            on_event_dropped=lambda event, subscriber: self.metrics.event_dropped(subscriber, event),
        )
        self.telemetry = app_telemetry(self.config.telemetry, self.events)  # None unless an exporter is configured
        install_log_correlation(masker=self.masker)  # trace ids and this app's masker on tasker's log records
        apply_log_format(self.config.logging.format)
        self.executor: Executor = InlineExecutor()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._runtime = Runtime(
            db=self.db,
            config=self.config,
            templates=self.templates,
            events=self.events,
            metrics=self.metrics,
            worker_id=self.worker_id,
            schedule=lambda task_id, delay: self.executor.enqueue(task_id, delay),
            otel=_otel_metrics(
                meter_provider
                if meter_provider is not None or self.telemetry is None
                else self.telemetry.meter_provider,
                self.config,
            ),
        )
        self._coordinator = Coordinator(self._runtime)
        self._operations = TaskOperations(self._runtime, self._coordinator.load_task)
        if executor is not None:
            self.set_executor(executor)
        self._catalog = CatalogCache()
        self._identity = identity_strategy(self.config.engine)

    @classmethod
    def from_config(
        cls, config: LoadedConfig | str | os.PathLike[str] | None = None, *, executor: Executor | None = None
    ) -> Tasker:
        """An app built from configuration, with its templates and subscriptions registered.

        ``config`` is a loaded configuration or a YAML file path; None reads ``$TASKER_CONFIG`` (if set) and
        the ``TASKER_SECTION__KEY`` environment (see :func:`tasker.config.load_config`). The directories in
        ``templates.import_paths`` go to the front of ``sys.path`` first, so handler classes import; then
        ``templates.paths`` and ``events.subscriptions`` are loaded. The schema is not migrated.
        """
        loaded = config if isinstance(config, LoadedConfig) else load_config(config)
        settings = loaded.config
        for root in reversed(settings.templates.import_paths):
            absolute = str(Path(root).resolve())
            if absolute not in sys.path:
                sys.path.insert(0, absolute)
        if executor is None and settings.executor == "celery":  # this process sends messages to Celery workers
            executor = _celery_producer(settings)
        app = cls(config=settings, executor=executor)
        try:
            for path in settings.templates.paths:
                app.load_task_templates(path)
            for path in settings.events.subscriptions:
                app.load_subscriptions(path)
        except BaseException:
            app.shutdown()
            raise
        return app

    def set_executor(self, executor: Executor) -> None:
        """Use ``executor`` from now on (its ``dispatch_step``, if any, receives reserved steps)."""
        self.executor = executor
        self._runtime.dispatch = getattr(executor, "dispatch_step", None)
        bind = getattr(executor, "bind", None)
        if callable(bind):  # executors that need the app (e.g. to read a task's trace context)
            bind(self)

    # -- schema and templates ------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the database schema to the latest migration (idempotent)."""
        self.db.migrate()
        self._catalog.forget()

    def load_task_templates(self, path: str | os.PathLike[str], *, replace: bool = False) -> list[TaskTemplate]:
        """Register the templates in a YAML file or a directory of them."""
        templates = load_templates(path, environment=self.config.environment)
        return [self.register_task_template(t, replace=replace) for t in templates]

    def register_task_template(
        self, template: TaskTemplate | Mapping[str, Any], *, replace: bool = False
    ) -> TaskTemplate:
        """Register a template (a parsed one, or a dict in the YAML shape) and its custom events."""
        if not isinstance(template, TaskTemplate):
            template = parse_template(template, environment=self.config.environment)
        for spec in template.custom_events:
            self.events.register_custom_event(spec.name, description=spec.description, fired_by=(template.full_name,))
        for step in template.step_templates:
            if step.is_ruby_handler:  # resolved when a task runs it (then its class's events are registered)
                for spec in step.custom_events:
                    self.events.register_custom_event(
                        spec.name, description=spec.description, fired_by=(step.handler_class,)
                    )
            else:
                self._register_handler_events(step, step.handler)
        self.templates.register(template, replace=replace)
        if template.task_handler_class is not None:  # update_annotations runs once such a task completes
            self.events.subscribe("task.completed", self._update_annotations, subscriber_name="TaskHandler hooks")
        return template

    # -- tasks --------------------------------------------------------------------------------------

    def create_task(self, request: TaskRequest) -> TaskView:
        """Validate and persist a task with its steps and edges, in one transaction.

        A template's ``TaskHandler`` (``task_handler_class``) supplies the schema and may adjust the
        new task in ``establish_step_dependencies_and_defaults`` before it is written.
        """
        template = self.templates.get(request.namespace, request.name, request.version)
        hooks = self._task_handler(template)
        schema = None if hooks is None else hooks.schema() or {}
        validate_request(template, request, self.config.engine.max_context_bytes, schema)
        check_bypass(template, request.bypass_steps)
        requested_at = request.requested_at or utcnow()
        identity = self._identity.generate_identity_hash(request, identity_options(request, requested_at))
        trace_context = new_task_trace_context(request.trace_context, self.config.telemetry.sampling_ratio)
        view = draft_task(template, request, requested_at)
        if hooks is not None:
            hooks.establish_step_dependencies_and_defaults(view, view.steps)
            check_json(view.context, "context")
            for step in view.steps:
                check_json(step.inputs, f"steps.{step.name}.inputs")
        for attempt in (1, 2):
            try:
                with self.db.connection() as connection:
                    ids = self._catalog.cached(template) or CatalogCache.ensure(connection, template)
                    task_id, step_ids = insert_task(
                        connection, template, request, ids, identity, trace_context, requested_at, view
                    )
                    bypassed = {t.entity_id for t in bypass_steps(connection, step_ids, request.bypass_steps)}
                break
            except StoreError as exc:
                cause = exc.__cause__
                if not isinstance(cause, IntegrityError):
                    raise
                translated = translate_integrity_error(cause)
                if attempt == 2 or not isinstance(translated, StoreError):
                    raise translated from cause
                self._catalog.forget()  # stale cached catalog ids: look them up again
        self._catalog.remember(template, ids)
        view.task_id = task_id
        for step in view.steps:
            step.task_id, step.step_id = task_id, step_ids[step.name]
            if step.step_id in bypassed:
                step.status = RESOLVED_MANUALLY
        info = TaskInfo(
            task_id=task_id, name=template.name, namespace=template.namespace_name, version=template.version,
            status=PENDING, context=view.context, created_at=view.created_at or requested_at, started_at=None,
            run_at=view.created_at, trace_context=trace_context, template=template,
        )  # fmt: skip
        self.metrics.task_created(*info.labels)
        if self._runtime.otel is not None:
            self._runtime.otel.message_sent(info.destination)
        with task_log_context(task_id, trace_context, self.config.telemetry.propagation):
            logger.info("task %s (%s) created with %d steps", task_id, template.full_name, len(step_ids))
        self._publish_created(info, view)
        self.executor.enqueue(task_id, 0.0)
        return view

    def _register_handler_events(self, step: StepTemplate, handler: type[StepHandler]) -> None:
        """Register the custom events a step declares, and those its handler class declares."""
        fired_by = (handler.__name__,)
        for spec in step.custom_events:
            self.events.register_custom_event(spec.name, description=spec.description, fired_by=fired_by)
        for event in handler.custom_event_configuration():
            self.events.register_custom_event(
                event["name"],
                description=event.get("description", f"Custom event from {handler.__name__}"),
                fired_by=fired_by,
            )

    def _task_handler(self, template: TaskTemplate) -> TaskHandler | None:
        """An instance of the template's ``TaskHandler`` class, or None when it names none."""
        cls = self.templates.task_handler(template)
        return None if cls is None else cls(template, self.annotate_task)

    def _update_annotations(self, event: Event) -> None:
        """``task.completed`` subscriber: run the completed task's ``TaskHandler.update_annotations``."""
        payload = event.payload
        hooks = self._task_handler(self.templates.get(payload["namespace"], payload["task_name"], payload["version"]))
        if hooks is not None:
            task = self.get_task(int(payload["task_id"]))
            hooks.update_annotations(task, StepSequence(list(task.steps), lambda name: None, list), list(task.steps))

    def annotate_task(self, task_id: int, annotation_type: str, data: Mapping[str, Any]) -> AnnotationView:
        """Attach a JSON annotation of ``annotation_type`` to a task (listed by ``get_task``)."""
        return annotate_task(self.db, task_id, annotation_type, data)

    def _publish_created(self, info: TaskInfo, view: TaskView) -> None:
        events = self.events
        events.emit(
            "task.initialize_requested",
            lambda: task_payload(info, PENDING, None, "initialize_requested", task_context=info.context,
                                 from_state=None, to_state=PENDING),
        )  # fmt: skip
        if events.has_subscribers("step.initialize_requested"):
            for step in view.steps:
                events.publish("step.initialize_requested", step_payload(info, step, "initialize_requested"))
        for step in view.steps:
            if step.status == RESOLVED_MANUALLY:
                events.emit(
                    "step.resolved_manually",
                    lambda: step_payload(info, step, "resolved_manually", from_state=PENDING,  # noqa: B023
                                         to_state=RESOLVED_MANUALLY, reason=BYPASSED),
                )  # fmt: skip
        events.emit(
            "observability.task.enqueue",
            lambda: {
                "task_id": info.task_id, "task_name": info.name, "namespace": info.namespace,
                "version": info.version, "task_context": info.context, "trace_context": info.trace_context,
                "queue": self.executor.name,
            },
        )  # fmt: skip

    def run_task(self, task_id: int, *, should_stop: Callable[[], bool] | None = None) -> str:
        """One orchestration pass in this process; returns the task's status.

        ``should_stop`` (checked between iterations) ends the pass early, leaving the task pending.
        """
        return self._coordinator.run_task(task_id, should_stop=should_stop)

    def run_dispatched_step(self, task_id: int, step_id: int, token: str) -> str | None:
        """Executor entry point: run a step a pass reserved for this worker (see ``Executor.dispatch_step``)."""
        return self._coordinator.run_step(task_id, step_id, token)

    def run_until_done(self, task_id: int, timeout: float = 30.0) -> str:
        """Run passes (sleeping until the task is due again) until it is terminal."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.run_task(task_id)
            if status in TERMINAL_TASK_STATES:
                return status
            with self.db.read() as session:
                run_at = session.scalar(select(Task.run_at).where(Task.task_id == task_id))
            wait = max((run_at - utcnow()).total_seconds(), 0.0) if run_at else 0.05
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait > remaining:
                if wait > remaining > 0:
                    time.sleep(remaining)
                raise TaskTimeoutError(task_id, status, timeout)
            time.sleep(max(wait, 0.001))

    def cancel_task(self, task_id: int) -> str:
        """Cancel a task and its unfinished steps."""
        return self._coordinator.cancel_task(task_id)

    def resolve_step(self, task_id: int, step_name: str) -> str:
        """Resolve a pending or failed step manually; returns the task's status."""
        return self._coordinator.resolve_step(task_id, step_name)

    def recover_expired_claims(self) -> int:
        """Return every step whose worker died (claim lease expired) to a retry-eligible state."""
        return self._coordinator.recover_expired_claims()

    def retry_task(self, task_id: int, *, reason: str = DEFAULT_RETRY_REASON) -> TaskView:
        """Send a task in ``error`` back to ``pending`` with its failed steps runnable again.

        Each failed step gets a fresh attempt budget and loses its permanent-error flag; the changes are
        recorded as transitions carrying ``reason`` and announced by ``step.retry_requested`` and
        ``task.retry_requested``; the executor is asked to run the task. Raises TaskNotRetryableError (a
        StateError) for a task that is not in ``error`` (complete, cancelled, still running).
        """
        self._operations.retry_task(task_id, reason)
        return self.get_task(task_id)

    def retry_tasks(
        self,
        *,
        status: str | None = ERROR,
        namespace: str | None = None,
        name: str | None = None,
        version: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        reason: str = DEFAULT_RETRY_REASON,
    ) -> RetryReport:
        """:meth:`retry_task` every task matching the filters (as :meth:`list_tasks`'s); counts refusals."""
        report = RetryReport()
        after: int | None = None
        while page := self.list_tasks(
            status=status, namespace=namespace, name=name, version=version, since=since, until=until,
            limit=_PAGE, after=after,
        ):  # fmt: skip
            for view in page:
                try:
                    self._operations.retry_task(view.task_id, reason)
                    report.retried.append(view.task_id)
                except TaskNotRetryableError as exc:
                    report.refused[view.task_id] = exc.status
            after = page[-1].task_id
        return report

    def execution_context(self, task_id: int) -> ExecutionContext:
        """The task's DAG state now: step counts by state, ready steps, ``execution_status``, health."""
        with self.db.read() as session:
            return execution_context(session, task_id)

    def get_task(self, task_id: int) -> TaskView:
        """A snapshot of the task and its steps."""
        with self.db.read() as session:
            found = find_task(session, task_id)
            if found is None:
                raise TaskNotFoundError(task_id)
            (summary,) = summarize(session, [found])
            steps = task_steps(session, task_id)
            annotations = task_annotations(session, task_id)
        view = self._task_view(summary)
        view.steps = [step_view(row, parents) for row, parents in steps]
        view.annotations = annotations
        for step in view.steps:
            error = step.results.get("error") if isinstance(step.results, dict) else None
            step.last_error = self.masker.scrub(str(error)) if error and step.status != "complete" else None
        return view

    def list_tasks(
        self,
        *,
        status: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        version: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> list[TaskView]:
        """Tasks newest first, without their steps (``steps_total``/``steps_complete`` are filled).

        ``since``/``until`` bound the creation time (a timedelta means that long ago); ``after`` is the
        last task id of the previous page (keyset pagination). Bad filters raise ValidationError.
        """
        if status is not None and status not in STATES:
            raise ValidationError(f"unknown status {status!r} (one of {', '.join(STATES)})", field="status")
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be between 1 and 1000, not {limit}", field="limit")
        now = utcnow()
        where = TaskFilter(
            status=status, namespace=namespace, name=name, version=version,
            since=now - since if isinstance(since, timedelta) else since,
            until=now - until if isinstance(until, timedelta) else until,
            after=after, limit=limit,
        )  # fmt: skip
        with self.db.read() as session:
            summaries = list_tasks(session, where)
        return [self._task_view(s, now) for s in summaries]

    def _task_view(self, summary: TaskSummary, now: datetime | None = None) -> TaskView:
        task = summary.task
        end = task.completed_at or now or utcnow()
        error = summary.last_error
        return TaskView(
            task_id=task.task_id, name=summary.name, namespace=summary.namespace, version=summary.version,
            status=task.status, context=task.context, complete=task.complete, initiator=task.initiator,
            source_system=task.source_system, reason=task.reason, tags=list(task.tags or []),
            requested_at=task.requested_at, created_at=task.created_at, started_at=task.started_at,
            completed_at=task.completed_at, steps_total=summary.steps_total,
            steps_complete=summary.steps_complete, duration=(end - task.created_at).total_seconds(),
            last_error=self.masker.scrub(error.strip().splitlines()[0]) if error and error.strip() else None,
            trace_id=(task.trace_context or {}).get("trace_id"),
        )  # fmt: skip

    # -- events -------------------------------------------------------------------------------------

    def subscribe(self, subscriber: BaseSubscriber) -> BaseSubscriber:
        """Subscribe a BaseSubscriber instance to this app's events."""
        self.events.subscribe_subscriber(subscriber)
        return subscriber

    def load_subscriptions(self, path: str | os.PathLike[str]) -> Sequence[BaseSubscriber]:
        """Instantiate and subscribe the subscribers declared in a YAML file."""
        return self.events.load_subscriptions(Path(path))

    # -- lifecycle ----------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the step pool and executor, flush telemetry, and close database connections."""
        self._coordinator.shutdown()
        self.executor.shutdown()
        self.events.close()
        if self.telemetry is not None:
            self.telemetry.shutdown()  # flush spans; only a provider the app created is shut down
        self.db.dispose()

    def __enter__(self) -> Tasker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


__all__ = ["RetryReport", "TaskTimeoutError", "Tasker"]
