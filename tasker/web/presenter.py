"""Library views -> response models; the one place where user data is masked before it leaves over HTTP.

Contexts and results go through the app's :class:`~tasker.events.Masker` (sensitive keys) and every string
in them, like every error text, through the scrubber of free text (``password=...``, URL credentials,
``Bearer ...``), exactly as event payloads and span attributes are.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tasker.events import Masker
from tasker.models.timeline import TaskTrace as Timeline
from tasker.telemetry.redaction import AttributeRedactor
from tasker.templates import TaskTemplate
from tasker.views import StepView, TaskView
from tasker.web.schemas import (
    Annotation,
    Step,
    Task,
    TaskTrace,
    TemplateDetail,
    TemplateGraphBody,
    TemplateStep,
    TemplateSummary,
    TraceSpan,
)


def _seconds(start: Any, end: Any) -> float | None:
    return round((end - start).total_seconds(), 6) if start is not None and end is not None else None


class Presenter:
    """Builds masked response models from task/step views, templates and timelines."""

    def __init__(self, masker: Masker, *, trace_url_template: str | None = None) -> None:
        self._masker = masker
        self._redactor = AttributeRedactor(masker)
        self._trace_url_template = trace_url_template

    # -- masking (the only place) ---------------------------------------------------------------

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with sensitive keys masked and secrets in its strings scrubbed."""
        return self._scrub(self._masker.redact(value))

    def text(self, value: str | None) -> str | None:
        """Free text (an error message) with secrets scrubbed."""
        return self._redactor.scrub(value) if value else value

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redactor.scrub(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub(v) for v in value]
        return value

    # -- tasks and steps -----------------------------------------------------------------------

    def step(self, view: StepView) -> Step:
        """A step with its masked results and the message of its latest failed attempt."""
        completed_at = view.processed_at
        return Step(
            step_id=view.step_id, name=view.name, status=view.status, attempts=view.attempts,
            retry_limit=view.retry_limit, retryable=view.retryable, skippable=view.skippable,
            depends_on=list(view.parent_names), started_at=view.started_at, completed_at=completed_at,
            duration_seconds=_seconds(view.started_at, completed_at), next_retry_at=view.next_retry_at,
            results=self.data(view.results), last_error=self.text(view.last_error),
        )  # fmt: skip

    def task(self, view: TaskView, *, with_steps: bool = True) -> Task:
        """A task, with its steps when ``with_steps`` (lists leave them out)."""
        return Task(
            task_id=view.task_id, name=view.name, namespace=view.namespace, version=view.version,
            status=view.status, context=self.data(view.context), initiator=view.initiator,
            source_system=view.source_system, reason=view.reason, tags=list(view.tags),
            created_at=view.created_at, started_at=view.started_at, completed_at=view.completed_at,
            duration_seconds=view.duration, steps_total=view.steps_total, steps_complete=view.steps_complete,
            trace_id=view.trace_id, last_error=self.text(view.last_error),
            steps=[self.step(s) for s in view.steps] if with_steps else None,
            annotations=[
                Annotation(annotation_type=a.annotation_type, data=self.data(a.data), created_at=a.created_at)
                for a in view.annotations
            ] if with_steps else None,
        )  # fmt: skip

    # -- templates -----------------------------------------------------------------------------

    @staticmethod
    def template_summary(template: TaskTemplate) -> TemplateSummary:
        """A template's identity and step count."""
        return TemplateSummary(
            namespace=template.namespace_name, name=template.name, version=template.version,
            description=template.description, step_count=len(template.step_templates),
        )  # fmt: skip

    @staticmethod
    def template_detail(template: TaskTemplate) -> TemplateDetail:
        """A template's steps, graph (nodes, edges, levels) and Mermaid flowchart."""
        graph = template.graph()
        return TemplateDetail(
            **Presenter.template_summary(template).model_dump(),
            steps=[
                TemplateStep(
                    name=s.name, description=s.description, handler=s.handler_class, depends_on=s.all_dependencies(),
                    retry_limit=s.default_retry_limit, retryable=s.default_retryable, skippable=s.skippable,
                    timeout_seconds=s.timeout_seconds,
                )
                for s in template.step_templates
            ],
            graph=TemplateGraphBody(nodes=graph.nodes, edges=graph.edges, levels=graph.levels),
            mermaid=graph.to_mermaid(), context_schema=template.context_schema,
        )  # fmt: skip

    # -- traces --------------------------------------------------------------------------------

    def trace(self, timeline: Timeline) -> TaskTrace:
        """The enqueue span, the task span and one span per step attempt, for a waterfall.

        The enqueue and task span ids are the task's OpenTelemetry ids; a step attempt's id is derived from
        the task, step and attempt (its OpenTelemetry span id is only known to the exporter).
        """
        tc = timeline.trace_context or {}
        trace_id = tc.get("trace_id")
        enqueue_id = str(tc.get("enqueue_span_id") or f"{timeline.task_id:016x}")
        task_id = str(tc.get("task_span_id") or _local_id(timeline.task_id, "task", 0))
        spans = [
            TraceSpan(
                name="enqueue", kind="enqueue", span_id=enqueue_id, parent_span_id=None, start=timeline.start,
                end=timeline.start, duration_seconds=0.0, status="complete",
            ),
            TraceSpan(
                name=f"task {timeline.full_name}", kind="task", span_id=task_id, parent_span_id=enqueue_id,
                start=timeline.start, end=timeline.end, duration_seconds=timeline.duration, status=timeline.status,
            ),
        ]  # fmt: skip
        for attempt in timeline.attempts:
            spans.append(
                TraceSpan(
                    name=f"step {attempt.step}" + (f" #{attempt.number}" if attempt.number else ""), kind="step",
                    span_id=_local_id(timeline.task_id, attempt.step, attempt.number or 0), parent_span_id=task_id,
                    start=attempt.start, end=attempt.end, duration_seconds=_seconds(attempt.start, attempt.end),
                    status=attempt.status, step_name=attempt.step, attempt=attempt.number,
                    error=self.text(attempt.error),
                )
            )  # fmt: skip
        url = self._trace_url_template.format(trace_id=trace_id) if trace_id and self._trace_url_template else None
        return TaskTrace(task_id=timeline.task_id, trace_id=trace_id, trace_url=url, spans=spans)


def _local_id(task_id: int, step: str, attempt: int) -> str:
    """A stable 16-hex-digit id for a span whose OpenTelemetry id is not stored."""
    return hashlib.blake2b(f"{task_id}/{step}/{attempt}".encode(), digest_size=8).hexdigest()
