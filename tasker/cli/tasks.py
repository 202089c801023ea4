"""``tasker tasks list|show|retry|cancel|create`` and ``tasker steps resolve``: operating tasks.

Thin commands over the public API (``app.list_tasks``, ``get_task``, ``retry_task``, ``cancel_task``,
``create_task``, ``resolve_step``); the app is built from the configuration like every other command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from tasker.app import Tasker
from tasker.cli.common import (
    cli_app,
    database_flag,
    database_option,
    fail,
    friendly_errors,
    json_option,
    parse_since,
    terminal_width,
)
from tasker.cli.trace import format_seconds, render_trace
from tasker.models.timeline import load_trace
from tasker.request import TaskRequest
from tasker.state.states import COMPLETE, STATES
from tasker.telemetry.redaction import AttributeRedactor
from tasker.views import StepView, TaskView

_since_option = click.option("--since", help="Created within a duration (90s, 30m, 1h, 2d, 1w) or since an ISO time.")
_timeout_option = click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait for a task this command runs."
)
_enqueue_only_option = click.option(
    "--enqueue-only", is_flag=True, help="Only queue the task for workers, even with the inline executor."
)


def _filters(func: Any) -> Any:
    for option in reversed(
        (
            click.option("--status", type=click.Choice(STATES), help="Only tasks in this state."),
            click.option("--namespace", help="Only tasks of this namespace."),
            click.option("--name", help="Only tasks of this template name."),
            _since_option,
        )
    ):
        func = option(func)
    return func


@click.group()
def tasks() -> None:
    """List, inspect, retry, cancel and create tasks.

    \b
    Example:
      tasker tasks list --status error --since 1h
      tasker tasks show 42
      tasker tasks retry 42
      tasker tasks create order_process --namespace ecommerce --context @order.json
    """


@click.group()
def steps() -> None:
    """Act on single steps of a task.

    \b
    Example:
      tasker steps resolve 42 charge_payment
    """


# -- rendering ------------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _duration(seconds: float | None) -> str:
    return format_seconds(seconds) if seconds is not None else "-"


def _step_duration(step: StepView) -> float | None:
    if step.started_at is None:
        return None
    end = step.processed_at or step.last_attempted_at
    return (end - step.started_at).total_seconds() if end is not None and end >= step.started_at else None


def task_json(view: TaskView, masker: AttributeRedactor) -> dict[str, Any]:
    """The JSON form of a task snapshot (steps included when loaded); context secrets masked."""
    data: dict[str, Any] = {
        "task_id": view.task_id,
        "name": view.name,
        "namespace": view.namespace,
        "version": view.version,
        "status": view.status,
        "steps_total": view.steps_total,
        "steps_complete": view.steps_complete,
        "created_at": _iso(view.created_at),
        "started_at": _iso(view.started_at),
        "completed_at": _iso(view.completed_at),
        "duration": view.duration,
        "last_error": view.last_error,
        "trace_id": view.trace_id,
    }
    if view.steps:
        data["context"] = masker.masker.redact(view.context)
        data["steps"] = [
            {
                "name": s.name,
                "status": s.status,
                "attempts": s.attempts,
                "retry_limit": s.retry_limit,
                "retryable": s.retryable,
                "depends_on": list(s.parent_names),
                "duration": _step_duration(s),
                "next_retry_at": _iso(s.next_retry_at),
                "last_error": s.last_error,
            }
            for s in view.steps
        ]
        data["annotations"] = [
            {
                "annotation_type": a.annotation_type,
                "data": masker.masker.redact(a.data),
                "created_at": _iso(a.created_at),
            }
            for a in view.annotations
        ]
    return data


def _table(rows: list[list[str]], width: int | None) -> list[str]:
    """Left-aligned columns; the last column is cut to fit ``width`` (when given)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False))
        room = max(width - len(head) - 2, 10) if width is not None else len(row[-1])
        last = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append(f"{head}  {last}".rstrip())
    return lines


def _echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


# -- list / show ---------------------------------------------------------------------------------------------


@tasks.command("list")
@_filters
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Tasks per page.")
@click.option("--after", type=int, help="Page after this task id (the last id of the previous page).")
@json_option
@database_option
@friendly_errors
def list_(
    status: str | None,
    namespace: str | None,
    name: str | None,
    since: str | None,
    limit: int,
    after: int | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """List tasks, newest first.

    Columns: id, namespace.name@version, status, steps done/total, created (UTC), duration and the
    latest step error (one line, secrets masked). Pages with --after: pass the last id shown.

    \b
    Example:
      tasker tasks list --status error --since 1h
      tasker tasks list --namespace ecommerce --limit 20 --after 120
      tasker tasks list --json | jq '.[].task_id'
    """
    with cli_app(database_flag(database_url), existing_database=True) as app:
        views = app.list_tasks(
            status=status, namespace=namespace, name=name,
            since=parse_since(since) if since else None, limit=limit, after=after,
        )  # fmt: skip
        redactor = AttributeRedactor(app.events.masker)
    if as_json:
        click.echo(json.dumps([task_json(v, redactor) for v in views], indent=2))
        return
    if not views:
        click.echo("no tasks", err=True)
        return
    rows = [["id", "task", "status", "steps", "created", "duration", "last error"]]
    for v in views:
        created = f"{v.created_at:%Y-%m-%d %H:%M:%S}" if v.created_at else "-"
        rows.append(
            [
                str(v.task_id), v.full_name, v.status, f"{v.steps_complete}/{v.steps_total}", created,
                _duration(v.duration), v.last_error or "",
            ]
        )  # fmt: skip
    _echo_lines(_table(rows, terminal_width()))
    if len(views) == limit:
        click.echo(f"(more: --after {views[-1].task_id})", err=True)


def show_lines(app: Tasker, view: TaskView, width: int | None) -> list[str]:
    """The human form of ``tasks show``: summary, DAG state, steps, then the waterfall."""
    ctx = app.execution_context(view.task_id)
    lines = [
        f"task {view.task_id} {view.full_name}: {view.status}",
        f"created {view.created_at:%Y-%m-%d %H:%M:%S} UTC; duration {_duration(view.duration)}; "
        f"steps {view.steps_complete}/{view.steps_total} done",
        f"dag: {ctx.execution_status} ({ctx.health_status}; {ctx.ready_steps} ready, "
        f"{ctx.in_progress_steps} running, {ctx.failed_steps} failed)",
        f"trace id: {view.trace_id or '-'}",
        "",
    ]
    rows = [["step", "status", "attempts", "duration", "next retry", "after", "last error"]]
    for s in view.steps:
        next_retry = f"{s.next_retry_at:%H:%M:%S}" if s.next_retry_at and s.status != COMPLETE else "-"
        error = (s.last_error or "").strip().splitlines()
        rows.append(
            [
                s.name, s.status, f"{s.attempts}/{s.retry_limit}", _duration(_step_duration(s)), next_retry,
                ",".join(s.parent_names) or "-", error[0] if error else "",
            ]
        )  # fmt: skip
    lines += _table(rows, width)
    if view.annotations:
        lines += ["", "annotations:"]
        lines += [
            f"  {a.annotation_type}: {json.dumps(app.masker.redact(a.data), sort_keys=True, default=str)}"
            for a in view.annotations
        ]
    scrub = AttributeRedactor(app.events.masker).scrub
    bar = max(10, min(40, width - 70)) if width is not None else 40
    lines += ["", *render_trace(load_trace(app.db, view.task_id), bar, scrub=scrub)[3:]]
    return lines


@tasks.command("show")
@click.argument("task_id", type=int)
@json_option
@database_option
@friendly_errors
def show(task_id: int, as_json: bool, database_url: str | None) -> None:
    """Show task TASK_ID: its steps (status, attempts/limit, duration, next retry, error), DAG state,
    trace id and the waterfall of its step attempts.

    \b
    Example:
      tasker tasks show 42
      tasker tasks show 42 --json
    """
    with cli_app(database_flag(database_url), existing_database=True) as app:
        view = app.get_task(task_id)
        if as_json:
            data = task_json(view, AttributeRedactor(app.events.masker))
            data["dag"] = app.execution_context(task_id).as_payload()
            click.echo(json.dumps(data, indent=2))
            return
        lines = show_lines(app, view, terminal_width())
    _echo_lines(lines)


# -- retry / cancel / resolve --------------------------------------------------------------------------------


def _run_inline(app: Tasker, task_ids: list[int], enqueue_only: bool, timeout: float) -> bool:
    """Run the tasks here when the configured executor is inline; True when every one completed."""
    if enqueue_only or app.config.executor != "inline":
        return True
    ok = True
    for task_id in task_ids:
        status = app.run_until_done(task_id, timeout=timeout)
        click.echo(f"task {task_id}: {status}")
        ok = ok and status == COMPLETE
    return ok


@tasks.command("retry")
@click.argument("task_ids", nargs=-1, type=int)
@_filters
@click.option("--reason", default="retry requested from the command line", show_default=True, help="Recorded.")
@_enqueue_only_option
@_timeout_option
@database_option
@friendly_errors
def retry(
    task_ids: tuple[int, ...],
    status: str | None,
    namespace: str | None,
    name: str | None,
    since: str | None,
    reason: str,
    enqueue_only: bool,
    timeout: float,
    database_url: str | None,
) -> None:
    """Retry failed tasks: each goes from error back to pending with its failed steps runnable again
    (attempts renewed, permanent-error flag cleared), recorded with --reason.

    With TASK_IDS, a task that is not in error (complete, cancelled, still running) is refused with
    exit status 1. Without them, every task matching the filters (--status error, ...) is retried and
    the counts re-queued and refused are printed. With the inline executor the command then runs the
    tasks itself unless --enqueue-only; otherwise workers pick them up.

    \b
    Example:
      tasker tasks retry 42
      tasker tasks retry --status error --namespace ecommerce --since 1d --enqueue-only
    """
    if task_ids and (status or namespace or name or since):
        fail("give task ids or filters (--status ...), not both")
    if not task_ids and not (status or namespace or name or since):
        fail("give task ids, or filters such as --status error for a bulk retry")
    with cli_app(database_flag(database_url), existing_database=True) as app:
        if task_ids:
            for task_id in task_ids:
                failed = [s.name for s in app.get_task(task_id).steps if s.status == "error"]
                app.retry_task(task_id, reason=reason)
                click.echo(f"task {task_id} re-queued: {', '.join(failed) or 'no failed steps'} pending again")
            ok = _run_inline(app, list(task_ids), enqueue_only, timeout)
        else:
            report = app.retry_tasks(
                status=status, namespace=namespace, name=name, since=parse_since(since) if since else None,
                reason=reason,
            )  # fmt: skip
            click.echo(f"re-queued {len(report.retried)}, refused {len(report.refused)}")
            ok = _run_inline(app, report.retried, enqueue_only, timeout)
    if not ok:
        raise SystemExit(1)


@tasks.command("cancel")
@click.argument("task_id", type=int)
@database_option
@friendly_errors
def cancel(task_id: int, database_url: str | None) -> None:
    """Cancel task TASK_ID and its unfinished steps.

    \b
    Example:
      tasker tasks cancel 42
    """
    with cli_app(database_flag(database_url), existing_database=True) as app:
        click.echo(f"task {task_id}: {app.cancel_task(task_id)}")


@steps.command("resolve")
@click.argument("task_id", type=int)
@click.argument("step_name")
@_enqueue_only_option
@_timeout_option
@database_option
@friendly_errors
def resolve(task_id: int, step_name: str, enqueue_only: bool, timeout: float, database_url: str | None) -> None:
    """Resolve step STEP_NAME of task TASK_ID by hand (a pending or failed step): its dependents may run.

    A task in error goes back to pending; with the inline executor the command then runs it unless
    --enqueue-only.

    \b
    Example:
      tasker steps resolve 42 charge_payment
    """
    with cli_app(database_flag(database_url), existing_database=True) as app:
        try:
            status = app.resolve_step(task_id, step_name)
        except KeyError:
            fail(f"task {task_id} has no step named {step_name!r}")
        click.echo(f"step {step_name} of task {task_id} resolved; task {status}")
        ok = _run_inline(app, [task_id], enqueue_only or status != "pending", timeout)
    if not ok:
        raise SystemExit(1)


# -- create ---------------------------------------------------------------------------------------------------


def read_context(text: str) -> dict[str, Any]:
    """``--context``: a JSON object, or ``@file.json``."""
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    context = json.loads(raw)
    if not isinstance(context, dict):
        fail("--context must be a JSON object")
    return context


@tasks.command("create")
@click.argument("name")
@click.option("--namespace", default="default", show_default=True, help="Template namespace.")
@click.option("--version", help="Template version (default: the newest registered).")
@click.option("--context", "context_text", default="{}", help="Task context: a JSON object or @file.json.")
@click.option("--bypass-step", "bypass_steps", multiple=True, help="A skippable step not to run (repeatable).")
@_enqueue_only_option
@_timeout_option
@json_option
@database_option
@friendly_errors
def create(
    name: str,
    namespace: str,
    version: str | None,
    context_text: str,
    bypass_steps: tuple[str, ...],
    enqueue_only: bool,
    timeout: float,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a task of template NAME (from templates.paths of the configuration) and print its id.

    With the inline executor the command runs it to the end (exit status 1 unless it completes) unless
    --enqueue-only; with the worker or celery executor, workers run it.

    \b
    Example:
      tasker tasks create order_process --namespace ecommerce --version 1.0.0 --context @order.json
      tasker tasks create order_process --namespace ecommerce --context '{"order_id": 1}' --enqueue-only
    """
    context = read_context(context_text)
    with cli_app(database_flag(database_url), existing_database=True) as app:
        if version is None:
            versions = app.templates.versions(namespace, name)
            if not versions:
                fail(f"no task template {namespace}.{name} (templates.paths: {app.config.templates.paths or 'none'})")
            version = versions[-1]
        view = app.create_task(
            TaskRequest(
                name=name, namespace=namespace, version=version, context=context, bypass_steps=list(bypass_steps),
                initiator="tasker-cli", source_system="cli",
            )
        )  # fmt: skip
        click.echo(view.task_id if not as_json else json.dumps({"task_id": view.task_id}))
        ok = _run_inline(app, [view.task_id], enqueue_only, timeout)
    if not ok:
        raise SystemExit(1)


__all__ = ["read_context", "show_lines", "steps", "task_json", "tasks"]
