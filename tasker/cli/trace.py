"""``tasker trace TASK_ID``: a task's waterfall of step attempts, read from the transition tables.

No tracing backend is needed: each ``pending -> in_progress`` step transition starts an attempt and the
next transition out of ``in_progress`` (``complete``, ``error``, ...) ends it; a failed attempt's message
is in that transition's metadata (``error_message``). Offsets are measured from the task's creation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tasker.cli.common import database_option, fail, friendly_errors
from tasker.config import TaskerConfig, resolve_database_url
from tasker.db import Database
from tasker.errors import TaskNotFoundError
from tasker.events import Masker
from tasker.models import TaskTransition, WorkflowStepTransition
from tasker.models.base import utcnow
from tasker.models.queries import find_task, task_steps
from tasker.state.states import CANCELLED, COMPLETE, ERROR, IN_PROGRESS, RESOLVED_MANUALLY, TERMINAL_TASK_STATES

#: Characters of the timeline column.
BAR_WIDTH = 40
_BAR_CHAR = {COMPLETE: "#", RESOLVED_MANUALLY: "#", ERROR: "x", IN_PROGRESS: ">"}


@dataclass(frozen=True)
class Attempt:
    """One row of the waterfall: a step attempt, or a step that never ran (``number`` None)."""

    step: str
    number: int | None
    status: str
    start: datetime | None
    end: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class TaskTrace:
    """A task's identity, status, time window and step attempts in the order they started."""

    task_id: int
    full_name: str
    status: str
    start: datetime
    end: datetime
    attempts: list[Attempt]

    @property
    def duration(self) -> float:
        """Seconds from the task's creation to its end (or to now while it runs)."""
        return max((self.end - self.start).total_seconds(), 0.0)


def _step_attempts(step: str, status: str, transitions: list[WorkflowStepTransition]) -> Iterator[Attempt]:
    """Pair one step's transitions (in ``sort_key`` order) into attempts (see the module docstring)."""
    number: int | None = None
    started: datetime | None = None
    claims = rows = 0
    for t in transitions:
        meta = t.metadata_ or {}
        if t.to_state == IN_PROGRESS:
            claims += 1
            number, started = int(meta.get("attempt_number") or claims), t.created_at
        elif t.from_state == IN_PROGRESS and started is not None:
            error = meta.get("error_message") if t.to_state == ERROR else None
            yield Attempt(step, number, t.to_state, started, t.created_at, str(error) if error else None)
            number, started, rows = None, None, rows + 1
        elif t.to_state in (CANCELLED, RESOLVED_MANUALLY):  # settled without running
            yield Attempt(step, None, t.to_state, None, t.created_at)
            rows += 1
    if started is not None:
        yield Attempt(step, number, IN_PROGRESS, started, None)
    elif rows == 0:  # never attempted
        yield Attempt(step, None, status, None, None)


def load_trace(db: Database, task_id: int) -> TaskTrace:
    """Read the task, its steps and their transitions; raises :class:`TaskNotFoundError`."""
    with db.read() as session:
        found = find_task(session, task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        task, name, version, namespace = found
        steps = [step for step, _parents in task_steps(session, task_id)]
        by_step: dict[int, list[WorkflowStepTransition]] = {s.workflow_step_id: [] for s in steps}
        for t in session.scalars(
            select(WorkflowStepTransition)
            .where(WorkflowStepTransition.workflow_step_id.in_(by_step))
            .order_by(WorkflowStepTransition.workflow_step_id, WorkflowStepTransition.sort_key)
        ):
            by_step[t.workflow_step_id].append(t)
        last_task_change = session.scalar(
            select(func.max(TaskTransition.created_at)).where(TaskTransition.task_id == task_id)
        )
    attempts = [a for s in steps for a in _step_attempts(s.name, s.status, by_step[s.workflow_step_id])]
    start = task.created_at
    if task.status in TERMINAL_TASK_STATES:
        ends = [t for t in (task.completed_at, last_task_change, *(a.end for a in attempts)) if t is not None]
        end = max(ends, default=start)
    else:
        end = utcnow()
    order = {s.name: i for i, s in enumerate(steps)}
    attempts.sort(key=lambda a: (a.start is None, a.start or start, order[a.step], a.number or 0))
    return TaskTrace(task.task_id, f"{namespace}.{name}@{version}", task.status, start, end, attempts)


def format_seconds(seconds: float) -> str:
    """``0.0123`` -> ``12ms``; ``1.5`` -> ``1.50s``."""
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"


def _bar(trace: TaskTrace, attempt: Attempt, width: int) -> str:
    if attempt.start is None:
        return " " * width
    total = trace.duration or 1e-9
    end = attempt.end or trace.end
    first = min(int((attempt.start - trace.start).total_seconds() / total * width), width - 1)
    last = min(max(math.ceil((end - trace.start).total_seconds() / total * width), first + 1), width)
    return " " * first + _BAR_CHAR.get(attempt.status, "#") * (last - first) + " " * (width - last)


def render_trace(trace: TaskTrace, width: int = BAR_WIDTH) -> list[str]:
    """The header and one row per attempt: step, attempt, status, start offset, duration, bar, error."""
    steps = {a.step for a in trace.attempts}
    lines = [
        f"task {trace.task_id} {trace.full_name}: {trace.status} in {format_seconds(trace.duration)}",
        f"created {trace.start:%Y-%m-%d %H:%M:%S} UTC; {len(steps)} steps, "
        f"{sum(a.number is not None for a in trace.attempts)} attempts",
        "",
    ]
    step_width = max([len("step"), *(len(a.step) for a in trace.attempts)])
    status_width = max([len("status"), *(len(a.status) for a in trace.attempts)])
    lines.append(
        f"{'step':<{step_width}}  attempt  {'status':<{status_width}}  {'start':>8}  {'duration':>8}  timeline"
    )
    for a in trace.attempts:
        offset = f"+{format_seconds((a.start - trace.start).total_seconds())}" if a.start else "-"
        duration = format_seconds(((a.end or trace.end) - a.start).total_seconds()) if a.start else "-"
        number = str(a.number) if a.number is not None else "-"
        row = (
            f"{a.step:<{step_width}}  {number:>7}  {a.status:<{status_width}}  {offset:>8}  {duration:>8}  "
            f"|{_bar(trace, a, width)}|"
        )
        if a.error:
            message = a.error.strip().splitlines()[0] if a.error.strip() else a.error
            row += f"  {message[:200]}"
        lines.append(row)
    return lines


def open_database(url: str | None) -> Database:
    """The database at ``url`` (default: the environment's), refusing a missing SQLite file or schema."""
    resolved = resolve_database_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database)).expanduser()
        if not path.exists():
            fail(f"no database file at {path}")
    shown = parsed.render_as_string(hide_password=True)
    db = Database(resolved)
    try:
        tables = db.table_names()
    except SQLAlchemyError as exc:
        db.dispose()
        fail(f"cannot read the database at {shown}: {getattr(exc, 'orig', None) or exc}")
    if "tasker_tasks" not in tables:
        db.dispose()
        fail(f"the database at {shown} has no tasker tables (run `tasker db upgrade`)")
    return db


@click.command()
@click.argument("task_id", type=int)
@database_option
@click.option("--width", default=BAR_WIDTH, show_default=True, help="Characters of the timeline column.")
@friendly_errors
def trace(task_id: int, database_url: str | None, width: int) -> None:
    """Print the waterfall of task TASK_ID's step attempts, read from the database.

    One row per attempt, in start order: step, attempt number, outcome, start offset from the task's
    creation, duration, a bar on the task's timeline (# complete, x error, > running) and, for a
    failed attempt, its error message (secrets masked). Needs no tracing backend: the transition tables
    are the record.

    \b
    Example:
      tasker trace 42 --database-url sqlite:///tasker.db
    """
    if width < 10:
        fail("--width must be at least 10")
    db = open_database(database_url)
    try:
        result = load_trace(db, task_id)
    finally:
        db.dispose()
    masker = Masker.from_config(TaskerConfig().events)  # error messages of old rows may quote secrets
    for line in render_trace(result, width):
        click.echo(masker.scrub(line))
