"""``/health/*`` and ``/api/v1/stats``: is the service up, is it ready, how is it doing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tasker.app import Tasker
from tasker.errors import TaskerError
from tasker.models.stats import SystemStatus, TaskStats, parse_period, system_status, task_stats
from tasker.web.deps import Context, WebContext, requires
from tasker.web.errors import ERROR_RESPONSES
from tasker.web.schemas import Alive, Check, Readiness

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Liveness")
def live() -> Alive:
    """200 while the process serves requests; touches no database."""
    return Alive()


def _database(app: Tasker) -> str | None:
    with app.db.read_connection() as connection:
        connection.execute(text("SELECT 1"))
    return None


def _schema(app: Tasker) -> str | None:
    app.db.check_ready()  # StoreError naming the current and the latest revision
    return None


async def _check(probe: Callable[[Tasker], str | None], context: WebContext, deadline: float) -> Check:
    """Run a blocking probe in a thread, abandoned (and failed) when the deadline passes."""
    started = time.monotonic()
    try:
        with anyio.fail_after(max(deadline - started, 0.0)):
            problem = await anyio.to_thread.run_sync(probe, context.tasker, abandon_on_cancel=True)
    except TimeoutError:
        problem = f"no answer within {context.ready_timeout:g}s"
    except TaskerError as exc:
        problem = str(exc).splitlines()[0][:300]
    except Exception as exc:  # any failure of the probe is the check's verdict, reported by name
        problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    elapsed = round((time.monotonic() - started) * 1000, 1)
    return Check(status="fail" if problem else "ok", detail=problem, duration_ms=elapsed)


@router.get(
    "/health/ready",
    summary="Readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A check failed (named in checks)"}},
)
async def ready(context: Context) -> JSONResponse:
    """200 when the database answers and its schema is at the latest migration, else 503; bounded by a timeout."""
    deadline = time.monotonic() + context.ready_timeout
    checks = {"database": await _check(_database, context, deadline)}
    if checks["database"].status == "ok":
        checks["schema"] = await _check(_schema, context, deadline)
    else:
        checks["schema"] = Check(status="fail", detail="database unavailable", duration_ms=0.0)
    healthy = all(c.status == "ok" for c in checks.values())
    body = Readiness(status="ready" if healthy else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get(
    "/health/status",
    dependencies=[Depends(requires("stats", "read"))],
    responses=ERROR_RESPONSES,
    summary="Operational status",
)
def status(context: Context) -> SystemStatus:
    """Task counts by status, the oldest pending task's age and the workers holding claims recently."""
    return system_status(context.tasker.db)


@router.get(
    "/api/v1/stats",
    tags=["stats"],
    dependencies=[Depends(requires("stats", "read"))],
    responses=ERROR_RESPONSES,
    summary="Task statistics",
)
def stats(
    context: Context,
    period: Annotated[str, Query(description="How far back: a number and m, h, d or w", examples=["24h"])] = "24h",
) -> TaskStats:
    """Counts by status, hourly throughput, completion and error rates, duration percentiles, slowest steps, errors."""
    return task_stats(context.tasker.db, parse_period(period))
