"""``tasker trace TASK_ID``: a task's waterfall of step attempts (:mod:`tasker.models.timeline`).

No tracing backend is needed: the transition tables are the record. Offsets are measured from the
task's creation.
"""

from __future__ import annotations

import math
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tasker.cli.common import database_option, fail, friendly_errors
from tasker.config import resolve_database_url
from tasker.db import Database
from tasker.models.timeline import Attempt, TaskTrace, load_trace
from tasker.state.states import COMPLETE, ERROR, IN_PROGRESS, RESOLVED_MANUALLY

#: Characters of the timeline column.
BAR_WIDTH = 40
_BAR_CHAR = {COMPLETE: "#", RESOLVED_MANUALLY: "#", ERROR: "x", IN_PROGRESS: ">"}


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
    failed attempt, its error message. Needs no tracing backend: the transition tables are the record.

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
    for line in render_trace(result, width):
        click.echo(line)
