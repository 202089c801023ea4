"""``tasker trace TASK_ID``: a task's waterfall of step attempts (:mod:`tasker.models.timeline`).

No tracing backend is needed: the transition tables are the record. Offsets are measured from the
task's creation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import click

from tasker.cli.common import cli_app, database_flag, database_option, fail, friendly_errors
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


def render_trace(trace: TaskTrace, width: int = BAR_WIDTH, scrub: Callable[[str], str] = str) -> list[str]:
    """The header and one row per attempt: step, attempt, status, start offset, duration, bar, error.

    ``scrub`` masks secrets in error messages (the app's redactor).
    """
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
            row += f"  {scrub(message)[:200]}"
        lines.append(row)
    return lines


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
    with cli_app(database_flag(database_url), existing_database=True) as app:
        result = load_trace(app.db, task_id)
        scrub = app.masker.scrub
    for line in render_trace(result, width, scrub=scrub):
        click.echo(line)
