"""Gauges read from the database at scrape time, and the worker heartbeats behind ``tasker_workers_active``.

In-progress and backlog figures are facts about the database, not sums of +1/-1 kept in processes that may
die between the two: :class:`DatabaseCollector` is a prometheus_client collector that counts them with a few
indexed queries when scraped, caching the answer for ``cache_seconds`` so that many concurrent scrapes (or
several exporters) cost one round of queries. It yields (see ``tasker/metrics/catalog.py``):

* ``tasker_tasks{namespace,task,version,status}``: unfinished tasks (``pending``, ``in_progress``) and failed
  ones (``error``, until retried or cancelled), per template;
* ``tasker_tasks_in_progress{namespace,task,version}``: the ``in_progress`` ones (the name dashboards use);
* ``tasker_steps{status}``: steps of unfinished tasks by status;
* ``tasker_oldest_pending_task_age_seconds``: how long the most overdue due task has waited (0: none);
* ``tasker_workers_active{kind}``: worker processes whose heartbeat is fresh (``worker`` or ``celery``);
* ``tasker_database_up``: 1 when the queries succeeded, 0 when the database could not be read.

Counts are counts: never negative, and equal to what the database holds when the cache was filled.
:class:`Heartbeat` keeps one ``tasker_workers`` row per worker process fresh from a daemon thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import delete, func, insert, select, update

from tasker.db import Database
from tasker.errors import TaskerError
from tasker.models import NamedTask, Task, TaskNamespace, WorkerHeartbeat, WorkflowStep
from tasker.models.base import utcnow
from tasker.state.states import ERROR, IN_PROGRESS, PENDING, STATES

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats of a worker process.
HEARTBEAT_SECONDS = 10.0
#: A worker counts as active while its last heartbeat is at most this old (three missed beats).
ACTIVE_WINDOW_SECONDS = 3 * HEARTBEAT_SECONDS
#: Heartbeat rows older than this are deleted (processes that died without saying goodbye).
FORGET_AFTER = timedelta(days=1)
#: Worker kinds ``tasker_workers_active`` reports (zero when none is alive).
WORKER_KINDS = ("worker", "celery")
#: Task statuses ``tasker_tasks`` reports.
TASK_STATUSES = (PENDING, IN_PROGRESS, ERROR)
_UNFINISHED = (PENDING, IN_PROGRESS)
_TASK_LABELS = ("namespace", "task", "version")


class DatabaseCollector(Collector):
    """Yields the database-derived gauges, from a cache refreshed at most every ``cache_seconds``."""

    def __init__(
        self, db: Database, *, cache_seconds: float = 5.0, active_window_seconds: float = ACTIVE_WINDOW_SECONDS
    ) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.active_window_seconds = active_window_seconds
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._expires = 0.0

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering must not query the database (families are known at scrape time)."""
        return []

    def collect(self) -> Iterable[Metric]:
        """The gauges, queried now unless the cached ones are younger than ``cache_seconds``."""
        with self._lock:
            if time.monotonic() >= self._expires:
                self._families = self._query()
                self._expires = time.monotonic() + self.cache_seconds
            return list(self._families)

    def _query(self) -> list[Metric]:
        up = GaugeMetricFamily("tasker_database_up", "1 when tasker's database gauges could be read, else 0.")
        try:
            families = self._read()
        except (TaskerError, OSError):
            logger.warning("metrics: could not read the database gauges", exc_info=True)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    def _read(self) -> list[Metric]:
        now = utcnow()
        with self.db.read_connection() as connection:
            by_task = connection.execute(
                select(TaskNamespace.name, NamedTask.name, NamedTask.version, Task.status, func.count())
                .select_from(Task)
                .join(NamedTask, NamedTask.named_task_id == Task.named_task_id)
                .join(TaskNamespace, TaskNamespace.task_namespace_id == NamedTask.task_namespace_id)
                .where(Task.status.in_(TASK_STATUSES))
                .group_by(TaskNamespace.name, NamedTask.name, NamedTask.version, Task.status)
            ).all()
            by_step = dict(
                connection.execute(
                    select(WorkflowStep.status, func.count())
                    .join(Task, Task.task_id == WorkflowStep.task_id)
                    .where(Task.status.in_(_UNFINISHED))
                    .group_by(WorkflowStep.status)
                ).all()
            )
            oldest_due = connection.execute(
                select(func.min(Task.run_at)).where(Task.status == PENDING, Task.run_at <= now)
            ).scalar()
            workers = dict(
                connection.execute(
                    select(WorkerHeartbeat.kind, func.count())
                    .where(WorkerHeartbeat.last_seen_at >= now - timedelta(seconds=self.active_window_seconds))
                    .group_by(WorkerHeartbeat.kind)
                ).all()
            )
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        for namespace, task, version, status, count in by_task:
            counts.setdefault((namespace, task, version), dict.fromkeys(TASK_STATUSES, 0))[status] = int(count)
        tasks = GaugeMetricFamily(
            "tasker_tasks",
            "Tasks by status: pending, in_progress and error ones, per template.",
            labels=[*_TASK_LABELS, "status"],
        )
        in_progress = GaugeMetricFamily(
            "tasker_tasks_in_progress",
            "Tasks currently being processed (in_progress in the database).",
            labels=_TASK_LABELS,
        )
        for labels, by_status in sorted(counts.items()):
            for status, count in by_status.items():
                tasks.add_metric([*labels, status], count)
            in_progress.add_metric(list(labels), by_status[IN_PROGRESS])
        steps = GaugeMetricFamily("tasker_steps", "Steps of unfinished tasks by status.", labels=["status"])
        for status in STATES:
            steps.add_metric([status], int(by_step.get(status, 0)))
        oldest = GaugeMetricFamily(
            "tasker_oldest_pending_task_age_seconds",
            "Seconds the most overdue pending task has waited since it was due.",
        )
        oldest.add_metric([], max((now - oldest_due).total_seconds(), 0.0) if oldest_due is not None else 0.0)
        active = GaugeMetricFamily(
            "tasker_workers_active", "Worker processes with a recent heartbeat, by kind.", labels=["kind"]
        )
        for kind in sorted({*WORKER_KINDS, *workers}):
            active.add_metric([kind], int(workers.get(kind, 0)))
        return [tasks, in_progress, steps, oldest, active]


class Heartbeat:
    """Keeps this worker process's ``tasker_workers`` row fresh from a daemon thread; :meth:`stop` removes it."""

    def __init__(self, db: Database, worker_id: str, kind: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.db = db
        self.worker_id = worker_id
        self.kind = kind
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Write the row now (insert on the first beat), and forget rows of long-dead processes."""
        now = utcnow()
        with self.db.transaction() as session:
            updated = session.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id).values(last_seen_at=now)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.execute(
                    insert(WorkerHeartbeat).values(
                        worker_id=self.worker_id, kind=self.kind, hostname=socket.gethostname(),
                        pid=os.getpid(), started_at=now, last_seen_at=now,
                    )
                )  # fmt: skip
            session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < now - FORGET_AFTER))

    def start(self) -> Heartbeat:
        """Beat now and then every ``interval`` seconds until :meth:`stop` (a database outage is retried)."""
        try:
            self.beat()
        except TaskerError:
            logger.warning("heartbeat of %s failed; retrying", self.worker_id, exc_info=True)
        self._thread = threading.Thread(target=self._run, name="tasker-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.beat()
            except TaskerError:
                logger.warning("heartbeat of %s failed; retrying", self.worker_id, exc_info=True)

    def stop(self) -> None:
        """Stop beating and delete the row (the worker is no longer active)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
        try:
            with self.db.transaction() as session:
                session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id))
        except TaskerError:
            logger.warning("could not remove the heartbeat of %s", self.worker_id, exc_info=True)
