"""Aggregates for operators and dashboards: task statistics over a period and the system's current status.

Every query is bounded: counts are grouped, lists are capped (``top``), and each filter is on an indexed
column (``created_at``, ``completed_at``, ``processed_at``, transition ``(to_state, created_at)``), so the cost
grows with the period's activity, not with the table. Percentiles are computed by PostgreSQL
(``percentile_cont``); on SQLite, the embedded development store, the period's durations are read and sorted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ARRAY, ColumnElement, Float, Select, and_, cast, func, literal, or_, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from tasker.db import Database
from tasker.errors import ValidationError
from tasker.models.base import utcnow
from tasker.models.catalog import DependentSystem, NamedStep
from tasker.models.instances import Task, WorkflowStep, WorkflowStepTransition
from tasker.state.states import CANCELLED, COMPLETE, ERROR, PENDING, RESOLVED_MANUALLY, STATES

__all__ = [
    "DurationStats",
    "ErrorClassCount",
    "HourlyThroughput",
    "SlowStep",
    "SystemStatus",
    "TaskStats",
    "parse_period",
    "system_status",
    "task_stats",
]

#: Longest period ``parse_period`` accepts.
MAX_PERIOD = timedelta(days=90)
#: A worker is "seen recently" when it claimed or attempted something within this window.
WORKER_WINDOW = timedelta(minutes=5)

_PERIOD = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_period(text: str) -> timedelta:
    """``"15m"``, ``"24h"``, ``"7d"`` or ``"2w"`` as a timedelta (at most 90 days); ValidationError otherwise."""
    match = _PERIOD.match(text)
    if match is None:
        raise ValidationError(f"invalid period {text!r}: use a number and m, h, d or w (e.g. 24h)", field="period")
    period = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(0) < period <= MAX_PERIOD:
        raise ValidationError(f"period {text!r} must be more than 0 and at most 90d", field="period")
    return period


class DurationStats(BaseModel):
    """Median and 95th percentile of a duration, in seconds (None without data)."""

    count: int
    p50_seconds: float | None
    p95_seconds: float | None


class HourlyThroughput(BaseModel):
    """Tasks reaching a terminal state in one clock hour (UTC)."""

    hour: datetime
    completed: int
    failed: int


class SlowStep(BaseModel):
    """A kind of step (a catalog step: its name and dependent system) with its average and longest duration."""

    step_name: str
    dependent_system: str
    count: int
    avg_seconds: float
    max_seconds: float


class ErrorClassCount(BaseModel):
    """How often step attempts failed with an exception class in the period."""

    error_class: str
    count: int


class TaskStats(BaseModel):
    """Statistics of the tasks created (counts) and finished (rates, durations) within a period."""

    period_seconds: float
    since: datetime
    until: datetime
    counts_by_status: dict[str, int]
    throughput_per_hour: list[HourlyThroughput]
    completion_rate: float | None
    error_rate: float | None
    task_duration: DurationStats
    step_duration: DurationStats
    slowest_steps: list[SlowStep]
    top_error_classes: list[ErrorClassCount]


class SystemStatus(BaseModel):
    """Now: task counts by status, the oldest pending task's age and the workers seen recently."""

    counts_by_status: dict[str, int]
    oldest_pending_age_seconds: float | None
    workers: list[str]


def _seconds(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds, in the dialect's arithmetic."""
    if dialect == "postgresql":  # date_part is double precision; EXTRACT's numeric is several times slower
        return func.date_part("epoch", end - start, type_=Float)
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)


def _hour(dialect: str, column: Any) -> ColumnElement[Any]:
    """The clock hour of ``column`` (a timestamp on PostgreSQL, ``YYYY-MM-DD HH:00:00`` text on SQLite)."""
    if dialect == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``) of sorted ``values``."""
    if not values:
        return None
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _durations(session: Session, dialect: str, seconds: Any, where: ColumnElement[bool]) -> DurationStats:
    if dialect == "postgresql":  # both percentiles from one sort
        quantiles = func.percentile_cont(postgresql.array([0.5, 0.95]), type_=ARRAY(Float)).within_group(seconds)
        count, found = session.execute(select(func.count(), quantiles).where(where)).one()
        p50, p95 = found if found else (None, None)
        return DurationStats(count=count, p50_seconds=p50, p95_seconds=p95)
    values = sorted(v for v in session.scalars(select(seconds).where(where)) if v is not None)
    return DurationStats(count=len(values), p50_seconds=_percentile(values, 0.5), p95_seconds=_percentile(values, 0.95))


def _step_durations(
    session: Session, dialect: str, where: ColumnElement[bool]
) -> tuple[DurationStats, dict[int, tuple[int, float, float]]]:
    """Percentiles of the completed steps' durations, and ``{named_step_id: (count, avg, max)}``."""
    seconds = _seconds(dialect, WorkflowStep.started_at, WorkflowStep.processed_at)
    kind = WorkflowStep.named_step_id
    by_kind = {
        kind_id: (count, float(mean), float(longest))
        for kind_id, count, mean, longest in session.execute(
            select(kind, func.count(), func.avg(seconds), func.max(seconds)).where(where).group_by(kind)
        )
    }
    return _durations(session, dialect, seconds, where), by_kind


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _counts(session: Session, query: Select[str, int]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    counts.update({status: count for status, count in session.execute(query)})
    return counts


def task_stats(db: Database, period: timedelta, *, now: datetime | None = None, top: int = 10) -> TaskStats:
    """Statistics over ``[now - period, now]``: counts of the tasks created, rates and durations of those finished."""
    until = now or utcnow()
    since = until - period
    dialect = db.dialect
    finished = and_(Task.completed_at >= since, Task.completed_at <= until)
    step_done = and_(WorkflowStep.processed_at >= since, WorkflowStep.processed_at <= until)
    with db.read() as session:
        if dialect == "postgresql":  # the percentiles sort every duration of the period: in memory, not on disk
            session.execute(text("SET LOCAL work_mem = '32MB'"))
        # one scan of the period's tasks: created ones by status, finished ones by hour and status
        created = and_(Task.created_at >= since, Task.created_at <= until)
        hour = _hour(dialect, Task.completed_at).label("hour")
        counts = dict.fromkeys(STATES, 0)
        outcomes = dict.fromkeys(STATES, 0)
        hours: dict[datetime, HourlyThroughput] = {}
        for started, status, created_count, finished_count in session.execute(
            select(hour, Task.status, func.count().filter(created), func.count().filter(finished))
            .where(or_(created, finished))
            .group_by(hour, Task.status)
        ):
            counts[status] += created_count
            if not finished_count:
                continue
            outcomes[status] += finished_count
            at = started if isinstance(started, datetime) else datetime.fromisoformat(started)
            at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
            bucket = hours.setdefault(at, HourlyThroughput(hour=at, completed=0, failed=0))
            if status in (COMPLETE, RESOLVED_MANUALLY):
                bucket.completed += finished_count
            elif status == ERROR:
                bucket.failed += finished_count
        task_duration = _durations(
            session,
            dialect,
            _seconds(dialect, func.coalesce(Task.started_at, Task.created_at), Task.completed_at),
            and_(finished, Task.status == COMPLETE),
        )
        step_duration, by_kind = _step_durations(
            session, dialect, and_(step_done, WorkflowStep.status == COMPLETE, WorkflowStep.started_at.is_not(None))
        )
        slowest_kinds = sorted(by_kind.items(), key=lambda item: (-item[1][1], item[0]))[:top]
        names = {
            step_id: (name, system)
            for step_id, name, system in session.execute(
                select(NamedStep.named_step_id, NamedStep.name, DependentSystem.name)
                .join(DependentSystem, DependentSystem.dependent_system_id == NamedStep.dependent_system_id)
                .where(NamedStep.named_step_id.in_([k for k, _ in slowest_kinds]))
            )
        }
        error_class = WorkflowStepTransition.metadata_["error_class"].as_string()
        errors = [
            ErrorClassCount(error_class=name or "unknown", count=count)
            for name, count in session.execute(
                select(error_class, func.count().label("n"))
                .where(
                    # in the words of the partial index's condition (a bound parameter would hide it from
                    # PostgreSQL's generic plans)
                    WorkflowStepTransition.to_state == literal(ERROR, literal_execute=True),
                    WorkflowStepTransition.created_at >= since,
                    WorkflowStepTransition.created_at <= until,
                )
                .group_by(error_class)
                .order_by(func.count().desc(), error_class)
                .limit(top)
            )
        ]
    slowest = [
        SlowStep(
            step_name=names[k][0], dependent_system=names[k][1], count=count, avg_seconds=mean, max_seconds=longest
        )
        for k, (count, mean, longest) in slowest_kinds
        if k in names
    ]
    throughput = [hours[h] for h in sorted(hours)]
    ended = outcomes[COMPLETE] + outcomes[RESOLVED_MANUALLY] + outcomes[ERROR] + outcomes[CANCELLED]
    return TaskStats(
        period_seconds=period.total_seconds(), since=since, until=until, counts_by_status=counts,
        throughput_per_hour=throughput,
        completion_rate=_rate(outcomes[COMPLETE] + outcomes[RESOLVED_MANUALLY], ended),
        error_rate=_rate(outcomes[ERROR], ended), task_duration=task_duration, step_duration=step_duration,
        slowest_steps=slowest, top_error_classes=errors,
    )  # fmt: skip


def system_status(db: Database, *, now: datetime | None = None, max_workers: int = 100) -> SystemStatus:
    """Task counts by status, the oldest pending task's age, and the workers holding (or recently holding) claims.

    A worker leaves no other trace than its claims: a task claim names its worker id, a step claim token is
    ``<worker id>/<nonce>`` (``dispatch/<nonce>`` for a step reserved for another process, not a worker).
    """
    now = now or utcnow()
    recent = now - WORKER_WINDOW
    with db.read() as session:
        counts = _counts(session, select(Task.status, func.count()).group_by(Task.status))
        oldest = session.scalar(select(func.min(Task.created_at)).where(Task.status == PENDING))
        task_claims = select(Task.claimed_by.label("claim")).where(
            Task.claimed_by.is_not(None), Task.claim_expires_at >= recent
        )
        step_claims = select(WorkflowStep.claimed_by.label("claim")).where(
            WorkflowStep.in_process.is_(True), WorkflowStep.lease_expires_at >= recent
        )
        claims = session.scalars(task_claims.union(step_claims).limit(max_workers * 4)).all()
    workers = sorted({c.rsplit("/", 1)[0] if "/" in c else c for c in claims if c and not c.startswith("dispatch/")})
    return SystemStatus(
        counts_by_status=counts,
        oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest is not None else None,
        workers=workers[:max_workers],
    )
