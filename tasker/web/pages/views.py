"""The dashboard's pages: server-rendered HTML over the API's own route functions (same queries, same masking).

Each page asks :class:`~tasker.web.pages.access.Viewer` who is looking, calls the functions behind the
``/api/v1`` routes (which call ``app.list_tasks``, ``app.get_task``, ``app.retry_task``, the stats queries...
and mask through the one :class:`~tasker.web.presenter.Presenter`), and renders a Jinja template. Actions are
two steps: a GET page that asks for confirmation, then a CSRF-checked POST that acts and redirects back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from tasker.errors import StateError, TaskerError, TaskNotFoundError, ValidationError
from tasker.state.states import STATES, TERMINAL_TASK_STATES
from tasker.web.auth import Action, Resource
from tasker.web.deps import WebContext, web_context
from tasker.web.errors import ApiError, error_for
from tasker.web.pages.access import CSRF_COOKIE, SESSION_COOKIE, Viewer, as_bearer, check_csrf, safe_path
from tasker.web.pages.graphics import layout_dag, throughput_bars, waterfall
from tasker.web.pages.site import Site
from tasker.web.routes import catalog, health, tasks
from tasker.web.schemas import Task, TaskPage, TaskTrace

logger = logging.getLogger(__name__)

FLASH_COOKIE = "tasker_flash"
#: Tasks per list page, and the most one bulk retry accepts.
PAGE_SIZE = 50
MAX_BULK = 500
#: Seconds between refreshes of a page showing unfinished work.
REFRESH_SECONDS = 3


class LoginRequired(Exception):
    """The page needs an authenticated viewer: send the browser to the login form."""


class PageRoute(APIRoute):
    """A route whose refusals and errors are HTML pages (the API keeps its JSON error shape)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except ApiError as exc:
                return _error_page(request, exc)
            except TaskerError as exc:
                error = error_for(exc)
                if error.status >= 500:
                    logger.error("page failed: %s", exc, exc_info=exc)
                return _error_page(request, error)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
                return _error_page(request, ApiError(422, "validation_error", problems or "invalid request"))

        return page


router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


def _site(request: Request) -> Site:
    site: Site = request.app.state.tasker_pages
    return site


def _viewer(request: Request, resource: Resource = "task", action: Action = "read") -> tuple[WebContext, Viewer]:
    """The web context and the viewer, who must be allowed ``action`` on ``resource``."""
    context = web_context(request)
    viewer = Viewer.of(request, context.auth, _site(request).sessions)
    if context.auth is not None and viewer.principal is None:
        raise LoginRequired
    if not viewer.can(resource, action):
        raise ApiError(403, "forbidden", f"not allowed to {action} {resource}")
    return context, viewer


def _render(
    request: Request, page: str, *, status_code: int = 200, viewer: Viewer | None = None, **values: Any
) -> Response:
    """Render a page with the common values (viewer, CSRF token, flash message) and its cookies and headers."""
    site = _site(request)
    if viewer is None:  # error and login pages: whoever it is, for the header
        viewer = Viewer.of(request, web_context(request).auth, site.sessions)
    csrf = request.cookies.get(CSRF_COOKIE) or site.new_csrf_token()
    flash = request.cookies.get(FLASH_COOKIE)
    body = site.render(
        page, request=request, viewer=viewer, csrf_token=csrf, flash=unquote(flash) if flash else None, **values
    )
    response = HTMLResponse(body, status_code=status_code, headers=site.security_headers)
    secure = request.url.scheme == "https"
    if request.cookies.get(CSRF_COOKIE) != csrf:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure)
    if flash:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="strict", secure=secure)
    return response


def _error_page(request: Request, error: ApiError) -> Response:
    return _render(request, "error.html", status_code=error.status, error=error)


def _redirect(request: Request, target: str, flash: str | None = None) -> Response:
    """303 to a local ``target``, with a message for the next page."""
    response = RedirectResponse(safe_path(target), status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash), max_age=60, httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )  # fmt: skip
    return response


def _checked(request: Request, csrf: str) -> None:
    if not check_csrf(request, csrf):
        raise ApiError(403, "csrf_failed", "the form is stale or came from another site: reload the page and retry")


def _tasks(count: int, noun: str = "task") -> str:
    """``1 task``, ``3 tasks``."""
    return f"{count} {noun}{'s' * (count != 1)}"


def _running(statuses: Iterable[str]) -> bool:
    return any(s not in TERMINAL_TASK_STATES for s in statuses)


# -- overview ------------------------------------------------------------------------------------


@router.get("/")
def overview(request: Request) -> Response:
    """Counts by status, the last 24 h, the oldest pending task, recent failures and the workers seen."""
    context, viewer = _viewer(request, "stats")
    status = health.status(context)
    stats = _site(request).day_stats(lambda: health.stats(context, "24h"))
    failures = _page(context, limit=8, status="error").tasks if viewer.can("task", "read") else []
    chart = throughput_bars(((h.hour, h.completed, h.failed) for h in stats.throughput_per_hour), stats.until)
    unfinished = status.counts_by_status.get("pending", 0) + status.counts_by_status.get("in_progress", 0)
    return _render(
        request, "overview.html", viewer=viewer, system=status, stats=stats, chart=chart, failures=failures,
        refresh=REFRESH_SECONDS if unfinished else None, nav="overview",
    )  # fmt: skip


# -- the task list -------------------------------------------------------------------------------


def _page(
    context: WebContext,
    *,
    limit: int = PAGE_SIZE,
    status: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int | None = None,
) -> TaskPage:
    """One list page through the API's own listing (bad filters raise ValidationError)."""
    return tasks.list_tasks(
        context, status=status, namespace=namespace, name=name, version=None,  # type: ignore[arg-type]
        since=since, until=until, limit=limit, after=after,
    )  # fmt: skip


def _moment(field: str, text: str | None) -> datetime | None:
    """A filter's time (``datetime-local`` form value or ISO 8601; UTC unless it says otherwise)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM)", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/tasks")
def task_list(
    request: Request,
    status: str = "",
    namespace: str = "",
    name: str = "",
    since: str = "",
    until: str = "",
    after: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    id: str = "",
) -> Response:
    """Newest first, filtered by the URL's query; ``id`` jumps to a task."""
    context, viewer = _viewer(request)
    if id.strip():
        if not id.strip().lstrip("#").isdigit():
            raise ValidationError(f"id: {id!r} is not a task id", field="id")
        return RedirectResponse(f"/tasks/{int(id.strip().lstrip('#'))}", status_code=303)
    filters = {"status": status, "namespace": namespace, "name": name, "since": since, "until": until}
    problem, shown, next_after = None, [], None
    try:
        page = _page(
            context, status=status or None, namespace=namespace or None, name=name or None,
            since=_moment("since", since), until=_moment("until", until), after=after,
        )  # fmt: skip
        shown, next_after = page.tasks, page.next_after
    except ValidationError as exc:
        problem = str(exc)
    query = {k: v for k, v in filters.items() if v}
    failed = [t.task_id for t in shown if t.status == "error"]
    here = "/tasks" + (f"?{urlencode({**query, **({'after': after} if after else {})})}" if query or after else "")
    return _render(
        request, "tasks.html", status_code=422 if problem else 200, viewer=viewer, tasks=shown, filters=filters,
        states=STATES, problem=problem, after=after, failed=failed, here=here, nav="tasks",
        next_url=f"/tasks?{urlencode({**query, 'after': next_after})}" if next_after else None,
        first_url=f"/tasks?{urlencode(query)}" if after else None,
        refresh=REFRESH_SECONDS if _running(t.status for t in shown) else None,
    )  # fmt: skip


@router.get("/tasks/retry")
def confirm_retry_shown(
    request: Request, ids: Annotated[list[int], Query(max_length=MAX_BULK)], back: str = "/tasks"
) -> Response:
    """Ask before retrying the failed tasks a list page showed."""
    _context, viewer = _viewer(request, "task", "retry")
    count = len(set(ids))
    return _render(
        request, "confirm.html", viewer=viewer, nav="tasks", title=f"Retry {_tasks(count, 'failed task')}?",
        message=f"{_tasks(count, 'failed task')} shown on the list will be sent back to pending "
        "with their failed steps runnable again.",
        action="/tasks/retry", button=f"Retry {_tasks(count)}",
        fields=[("ids", str(i)) for i in sorted(set(ids))] + [("back", safe_path(back, "/tasks"))],
        cancel=safe_path(back, "/tasks"),
    )  # fmt: skip


@router.post("/tasks/retry")
def retry_shown(
    request: Request,
    ids: Annotated[list[int], Form(max_length=MAX_BULK)],
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/tasks",
) -> Response:
    """Retry each task; those not in ``error`` (any more) are counted as refused."""
    context, _ = _viewer(request, "task", "retry")
    _checked(request, csrf)
    requeued = refused = 0
    for task_id in sorted(set(ids)):
        try:
            tasks.retry_task(task_id, context)
            requeued += 1
        except (StateError, TaskNotFoundError):
            refused += 1
    return _redirect(request, back, f"Re-queued {_tasks(requeued)}, {refused} refused.")


# -- one task ------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@router.get("/tasks/{task_id}")
async def task_page(request: Request, task_id: tasks.TaskId) -> Response:
    """Header, DAG, steps, waterfall, context and results of one task, with its actions.

    The task and its timeline are independent reads: they are fetched side by side.
    """
    context, viewer = await run_in_threadpool(_viewer, request)
    envelope, trace = await asyncio.gather(
        run_in_threadpool(tasks.get_task, task_id, context), run_in_threadpool(tasks.get_trace, task_id, context)
    )
    return await run_in_threadpool(_task_html, request, viewer, envelope.task, trace)


def _task_html(request: Request, viewer: Viewer, task: Task, trace: TaskTrace) -> Response:
    steps = task.steps or []
    depends_on = {s.name: s.depends_on for s in steps}
    dag = layout_dag(depends_on.items(), {s.name: s.status for s in steps})
    bars, total = waterfall(trace.spans, depends_on)
    details = []
    for step in steps:
        results = step.results
        backtrace = results.get("backtrace") if isinstance(results, dict) else None
        if isinstance(results, dict) and "backtrace" in results:
            results = {k: v for k, v in results.items() if k != "backtrace"}
        details.append((step, _json(results) if results else None, backtrace))
    return _render(
        request, "task.html", viewer=viewer, task=task, trace=trace, dag=dag, bars=bars, total=total,
        steps=details, context_json=_json(task.context), nav="tasks", hrefs={s.name: f"#step-{s.step_id}" for s in steps},
        resolvable=task.status in ("pending", "in_progress", "error"),
        refresh=None if task.status in TERMINAL_TASK_STATES else REFRESH_SECONDS,
    )  # fmt: skip


_ACTIONS: dict[str, tuple[Action, str, str]] = {
    "retry": ("retry", "Retry", "sent back to pending with its failed steps runnable again"),
    "cancel": ("cancel", "Cancel", "cancelled with its unfinished steps; this cannot be undone"),
}


@router.get("/tasks/{task_id}/{verb}")
def confirm_task_action(request: Request, task_id: tasks.TaskId, verb: Literal["retry", "cancel"]) -> Response:
    """Ask before retrying or cancelling a task."""
    action, label, effect = _ACTIONS[verb]
    context, viewer = _viewer(request, "task", action)
    task = tasks.get_task(task_id, context).task
    return _render(
        request, "confirm.html", viewer=viewer, nav="tasks", title=f"{label} task {task_id}?",
        message=f"Task {task_id} ({task.namespace}.{task.name}@{task.version}, {task.status}) will be {effect}.",
        action=f"/tasks/{task_id}/{verb}", button=f"{label} task {task_id}", fields=[], cancel=f"/tasks/{task_id}",
    )  # fmt: skip


@router.post("/tasks/{task_id}/{verb}")
def task_action(
    request: Request,
    task_id: tasks.TaskId,
    verb: Literal["retry", "cancel"],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Retry or cancel the task (a task in a state that forbids it: 409), then back to its page."""
    action, label, _effect = _ACTIONS[verb]
    context, _who = _viewer(request, "task", action)
    _checked(request, csrf)
    status = (tasks.retry_task if verb == "retry" else tasks.cancel_task)(task_id, context).task.status
    return _redirect(request, f"/tasks/{task_id}", f"{label}: task {task_id} is now {status}.")


@router.get("/tasks/{task_id}/steps/{step_id}/resolve")
def confirm_resolve(request: Request, task_id: tasks.TaskId, step_id: tasks.StepId) -> Response:
    """Ask before resolving a step by hand."""
    context, viewer = _viewer(request, "step", "resolve")
    step = tasks.get_step(task_id, step_id, context).step
    return _render(
        request, "confirm.html", viewer=viewer, nav="tasks", title=f"Resolve step {step.name!r} by hand?",
        message=f"Step {step.name!r} of task {task_id} ({step.status}) will be marked resolved as if it had "
        "completed; the steps that depend on it become runnable.",
        action=f"/tasks/{task_id}/steps/{step_id}/resolve", button=f"Resolve {step.name}", fields=[],
        cancel=f"/tasks/{task_id}",
    )  # fmt: skip


@router.post("/tasks/{task_id}/steps/{step_id}/resolve")
def resolve(
    request: Request,
    task_id: tasks.TaskId,
    step_id: tasks.StepId,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Resolve the step (a step that is not pending or failed: 409), then back to the task."""
    context, _who = _viewer(request, "step", "resolve")
    _checked(request, csrf)
    task = tasks.resolve_step(task_id, step_id, context).task
    return _redirect(request, f"/tasks/{task_id}", f"Resolved a step: task {task_id} is now {task.status}.")


# -- templates and events -----------------------------------------------------------------------


@router.get("/templates")
def template_list(request: Request) -> Response:
    """Every registered template."""
    context, viewer = _viewer(request, "template")
    found = catalog.list_templates(context).templates
    return _render(request, "templates.html", viewer=viewer, templates=found, nav="templates")


@router.get("/templates/{namespace}/{name}")
def template_page(request: Request, namespace: str, name: str, version: str | None = None) -> Response:
    """A template's steps and DAG (the highest version unless ``version`` is given)."""
    context, viewer = _viewer(request, "template")
    detail = catalog.get_template(namespace, name, context, version)
    versions = context.tasker.templates.versions(namespace, name)
    parents: dict[str, list[str]] = {node: [] for node in detail.graph.nodes}
    for parent, child in detail.graph.edges:
        parents[child].append(parent)
    return _render(
        request, "template.html", viewer=viewer, template=detail, versions=versions, nav="templates",
        dag=layout_dag(parents.items()), hrefs={s.name: f"#step-{i}" for i, s in enumerate(detail.steps, 1)},
        schema_json=_json(detail.context_schema) if detail.context_schema else None,
    )  # fmt: skip


@router.get("/events")
def event_list(request: Request) -> Response:
    """The event catalog."""
    context, viewer = _viewer(request, "event")
    return _render(request, "events.html", viewer=viewer, events=catalog.list_events(context).events, nav="events")


# -- login ---------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The token form (without authentication configured, straight to ``next``)."""
    if web_context(request).auth is None:
        return RedirectResponse(safe_path(next), status_code=303)
    return _render(request, "login.html", next=safe_path(next), problem=None)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Open a session for a token the app's Auth accepts; the browser gets only the session's random id."""
    auth = web_context(request).auth
    _checked(request, csrf)
    if auth is None:
        return RedirectResponse(safe_path(next), status_code=303)
    principal = auth.authenticate(as_bearer(request, token.strip())) if token.strip() else None
    if principal is None:
        return _render(request, "login.html", status_code=401, next=safe_path(next), problem="Unknown token.")
    response = RedirectResponse(safe_path(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, _site(request).sessions.open(token.strip()), httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """Close the session."""
    _checked(request, csrf)
    _site(request).sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response
