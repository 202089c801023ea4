"""``/api/v1/tasks``: create, read, act on tasks and their steps."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from opentelemetry import propagate
from pydantic import AwareDatetime

from tasker.errors import InvalidStateTransition
from tasker.models.timeline import load_trace
from tasker.request import TaskRequest
from tasker.state.states import CANCELLED, TERMINAL_TASK_STATES
from tasker.views import StepView, TaskView
from tasker.web.deps import Context, requires
from tasker.web.errors import ERROR_RESPONSES, ApiError
from tasker.web.schemas import CreateTask, StepEnvelope, TaskEnvelope, TaskPage, TaskTrace

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=ERROR_RESPONSES)

TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The task's id")]
StepId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The step's id")]
#: The task states (``tasker.state.states.STATES``, as a type the OpenAPI spec can enumerate).
Status = Literal["pending", "in_progress", "complete", "error", "cancelled", "resolved_manually"]
#: Largest page of ``GET /api/v1/tasks``.
MAX_PAGE = 500


def _step(task: TaskView, step_id: int) -> StepView:
    for step in task.steps:
        if step.step_id == step_id:
            return step
    raise ApiError(404, "not_found", f"task {task.task_id} has no step with id {step_id}")


def trace_carrier(request: Request) -> dict[str, str] | None:
    """The request's trace context headers (``traceparent``, ``tracestate``, ... as the propagator reads them)."""
    fields = propagate.get_global_textmap().fields
    carrier = {name: request.headers[name] for name in fields if name in request.headers}
    return carrier or None


@router.post(
    "", status_code=201, response_model=TaskEnvelope, dependencies=[Depends(requires("task", "create"))],
    summary="Create a task",
)  # fmt: skip
def create_task(
    body: CreateTask,
    request: Request,
    context: Context,
    traceparent: Annotated[str | None, Header(description="W3C trace context: the task's trace joins it")] = None,
    tracestate: Annotated[str | None, Header(description="W3C trace state, with traceparent")] = None,
) -> TaskEnvelope:
    """Validate the context against the template's schema, persist the task and hand it to the executor.

    A W3C ``traceparent`` (and ``tracestate``) header becomes the parent of the task's enqueue span.
    """
    del traceparent, tracestate  # declared for the spec; read through the propagator below
    fields = body.model_dump(exclude_none=True)
    app = context.tasker
    created = app.create_task(TaskRequest(**fields, trace_context=trace_carrier(request)))
    return TaskEnvelope(task=context.presenter.task(app.get_task(created.task_id)))


@router.get("", dependencies=[Depends(requires("task", "read"))], summary="List tasks, newest first")
def list_tasks(
    context: Context,
    status: Annotated[Status | None, Query(description="Only tasks in this state")] = None,
    namespace: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[AwareDatetime | None, Query(description="Created at or after (ISO 8601)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Created before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    after: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="next_after of the previous page")] = None,
) -> TaskPage:
    """Filters combine; pages are keyset-paginated on the task id (stable while tasks are created)."""
    views = context.tasker.list_tasks(
        status=status, namespace=namespace, name=name, version=version, since=since, until=until,
        limit=limit + 1, after=after,
    )  # fmt: skip
    page = views[:limit]
    more = len(views) > limit
    return TaskPage(
        tasks=[context.presenter.task(v, with_steps=False) for v in page],
        next_after=page[-1].task_id if more else None,
    )


@router.get("/{task_id}", dependencies=[Depends(requires("task", "read"))], summary="Read a task and its steps")
def get_task(task_id: TaskId, context: Context) -> TaskEnvelope:
    """The task with its steps."""
    return TaskEnvelope(task=context.presenter.task(context.tasker.get_task(task_id)))


@router.post("/{task_id}/retry", dependencies=[Depends(requires("task", "retry"))], summary="Retry a failed task")
def retry_task(task_id: TaskId, context: Context) -> TaskEnvelope:
    """Send a task in ``error`` back to ``pending`` with its failed steps runnable again; other states: 409."""
    return TaskEnvelope(task=context.presenter.task(context.tasker.retry_task(task_id)))


@router.post("/{task_id}/cancel", dependencies=[Depends(requires("task", "cancel"))], summary="Cancel a task")
def cancel_task(task_id: TaskId, context: Context) -> TaskEnvelope:
    """Cancel the task and its unfinished steps; a task already finished is a conflict (409)."""
    app = context.tasker
    status = app.get_task(task_id).status
    if status in TERMINAL_TASK_STATES:
        raise InvalidStateTransition("task", task_id, status, CANCELLED)
    app.cancel_task(task_id)
    return TaskEnvelope(task=context.presenter.task(app.get_task(task_id)))


@router.get("/{task_id}/steps/{step_id}", dependencies=[Depends(requires("step", "read"))], summary="Read one step")
def get_step(task_id: TaskId, step_id: StepId, context: Context) -> StepEnvelope:
    """One step of the task."""
    return StepEnvelope(step=context.presenter.step(_step(context.tasker.get_task(task_id), step_id)))


@router.post(
    "/{task_id}/steps/{step_id}/resolve",
    dependencies=[Depends(requires("step", "resolve"))],
    summary="Resolve a step manually",
)
def resolve_step(task_id: TaskId, step_id: StepId, context: Context) -> TaskEnvelope:
    """Mark a pending or failed step resolved; a failed task becomes runnable again. Other steps: 409."""
    app = context.tasker
    app.resolve_step(task_id, _step(app.get_task(task_id), step_id).name)
    return TaskEnvelope(task=context.presenter.task(app.get_task(task_id)))


@router.get("/{task_id}/trace", dependencies=[Depends(requires("task", "read"))], summary="A task's waterfall")
def get_trace(task_id: TaskId, context: Context) -> TaskTrace:
    """The enqueue, the task run and every step attempt with start, end, status and error, from the database."""
    return context.presenter.trace(load_trace(context.tasker.db, task_id))
