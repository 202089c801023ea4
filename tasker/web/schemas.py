"""Pydantic models of every request and response body (they make ``/openapi.json`` complete).

Times are ISO 8601 UTC. Statistics and status bodies are the library's own models
(:mod:`tasker.models.stats`), returned as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Step(BaseModel):
    """A step of a task, its retry bookkeeping and (masked) results."""

    step_id: int
    name: str
    status: str
    attempts: int
    retry_limit: int
    retryable: bool
    skippable: bool
    depends_on: list[str]
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    next_retry_at: datetime | None
    results: Any
    last_error: str | None


class Task(BaseModel):
    """A task; ``steps`` is present when one task is read, absent in lists."""

    task_id: int
    name: str
    namespace: str
    version: str
    status: str
    context: dict[str, Any]
    initiator: str
    source_system: str
    reason: str
    tags: list[str]
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    steps_total: int
    steps_complete: int
    trace_id: str | None
    last_error: str | None
    steps: list[Step] | None = None


class TaskEnvelope(BaseModel):
    """``{"task": Task}``."""

    task: Task


class TaskPage(BaseModel):
    """One page of tasks, newest first; pass ``next_after`` as ``after`` for the next (null: last page)."""

    tasks: list[Task]
    next_after: int | None


class StepEnvelope(BaseModel):
    """``{"step": Step}``."""

    step: Step


class CreateTask(BaseModel):
    """The body of ``POST /api/v1/tasks``: which template to run, with what context."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    namespace: str = Field(default="default", min_length=1, max_length=64)
    version: str = Field(default="0.1.0", min_length=1, max_length=16)
    context: dict[str, Any] = Field(default_factory=dict)
    initiator: str | None = Field(default=None, max_length=128)
    source_system: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=128)
    tags: list[str] = Field(default_factory=list)
    bypass_steps: list[str] = Field(default_factory=list)


class TraceSpan(BaseModel):
    """One bar of a task's waterfall, from the stored transitions: the enqueue, the task run or a step attempt."""

    name: str
    kind: Literal["enqueue", "task", "step"]
    span_id: str
    parent_span_id: str | None
    start: datetime | None
    end: datetime | None
    duration_seconds: float | None
    status: str
    step_name: str | None = None
    attempt: int | None = None
    error: str | None = None


class TaskTrace(BaseModel):
    """A task's spans for a waterfall; ``trace_id`` links to the OpenTelemetry trace when the task has one."""

    task_id: int
    trace_id: str | None
    trace_url: str | None
    spans: list[TraceSpan]


class TemplateSummary(BaseModel):
    """A registered template's identity and size."""

    namespace: str
    name: str
    version: str
    description: str | None
    step_count: int


class TemplateList(BaseModel):
    """``{"templates": [...]}`` sorted by namespace, name and version."""

    templates: list[TemplateSummary]


class TemplateStep(BaseModel):
    """A step of a template as declared."""

    name: str
    description: str | None
    handler: str
    depends_on: list[str]
    retry_limit: int
    retryable: bool
    skippable: bool
    #: Seconds an attempt may run (None: the configuration's ``execution.step_timeout_seconds``, if any).
    timeout_seconds: float | None


class TemplateGraphBody(BaseModel):
    """The DAG: nodes in definition order, ``[parent, child]`` edges, ``{step: level}`` (roots are 0)."""

    nodes: list[str]
    edges: list[tuple[str, str]]
    levels: dict[str, int]


class TemplateDetail(TemplateSummary):
    """A template with its steps, DAG, Mermaid flowchart and the JSON schema of its context."""

    steps: list[TemplateStep]
    graph: TemplateGraphBody
    mermaid: str
    context_schema: dict[str, Any] | None


class EventDescription(BaseModel):
    """An event of the catalog with its payload's JSON schema."""

    name: str
    category: str
    description: str
    fired_by: list[str]
    payload_schema: dict[str, Any]


class EventList(BaseModel):
    """``{"events": [...]}``: every system event and the app's custom events."""

    events: list[EventDescription]


class Alive(BaseModel):
    """``/health/live``: the process answers."""

    status: Literal["alive"] = "alive"


class Check(BaseModel):
    """One readiness check: ``ok`` or ``fail`` with what failed."""

    status: Literal["ok", "fail"]
    detail: str | None = None
    duration_ms: float


class Readiness(BaseModel):
    """``/health/ready``: every check, and the verdict."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Check]
