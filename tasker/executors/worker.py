"""Database workers: processes that poll the database for runnable tasks and run their passes.

A task is runnable when it is ``pending`` and due (``run_at <= now``) and not claimed, or ``in_progress``
with an expired claim (its runner died). A worker claims one with ``SELECT ... FOR UPDATE SKIP LOCKED``
on PostgreSQL (SQLite serializes writers, so a plain conditional claim is enough there), runs a pass,
and the pass's finalization releases the claim. Several workers may share one PostgreSQL database.
Steps are protected by their own claims and leases, so a step never runs twice concurrently.

On SIGTERM/SIGINT a worker stops claiming, lets each running pass finish the steps it is executing,
finalizes (the task goes back to ``pending`` for another worker) and exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, or_, select, update

from tasker.errors import StoreError
from tasker.metrics.database import Heartbeat
from tasker.models import Task
from tasker.models.base import utcnow
from tasker.state.states import IN_PROGRESS, PENDING

if TYPE_CHECKING:
    from tasker.app import Tasker

logger = logging.getLogger(__name__)

_TASKS = cast(Table, Task.__table__)


def claim_next_task(app: Tasker, worker_id: str) -> int | None:
    """Claim the most overdue runnable task for ``worker_id``; None when there is none.

    Runnable tasks are taken oldest first (by creation): a task whose runner died, or whose step waited out a
    retry backoff, keeps its place ahead of the tasks that arrived after it instead of waiting for that backlog
    to drain; among tasks created together, the most overdue goes first.
    """
    now = utcnow()
    lease = now + timedelta(seconds=app.config.execution.step_lease_seconds)
    runnable = or_(
        and_(
            _TASKS.c.status == PENDING,
            _TASKS.c.run_at <= now,
            or_(_TASKS.c.claim_expires_at.is_(None), _TASKS.c.claim_expires_at < now),
        ),
        and_(_TASKS.c.status == IN_PROGRESS, _TASKS.c.claim_expires_at < now),
    )
    with app.db.transaction() as session:
        task_id = session.execute(
            select(_TASKS.c.task_id)
            .where(runnable)
            .order_by(_TASKS.c.created_at, _TASKS.c.run_at, _TASKS.c.task_id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar()
        if task_id is None:
            return None
        claimed = session.execute(
            update(_TASKS)
            .where(_TASKS.c.task_id == task_id, runnable)
            .values(claimed_by=worker_id, claim_expires_at=lease)
        )
        return int(task_id) if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Worker:
    """Runs passes of runnable tasks with ``concurrency`` threads until stopped."""

    def __init__(
        self,
        app: Tasker,
        *,
        concurrency: int = 1,
        poll_interval: float | None = None,
        recovery_interval: float = 5.0,
    ) -> None:
        self.app = app
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval if poll_interval is not None else app.config.execution.worker_poll_interval
        self.recovery_interval = recovery_interval
        self.stopping = threading.Event()
        self.passes = 0
        #: Set when a worker thread could not continue; ``tasker worker`` then exits non-zero.
        self.failed = False
        self._lock = threading.Lock()
        self._last_recovery = 0.0
        self._database_down = False

    def stop(self, *_: Any) -> None:
        """Stop claiming; running passes finish their current steps and finalize."""
        if not self.stopping.is_set():
            logger.info("worker %s stopping", self.app.worker_id)
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the worker gracefully (main thread only)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> int:
        """Process tasks until stopped (or, with ``until_idle``, until nothing is runnable); returns passes run."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        idle = threading.Event() if until_idle else None
        heartbeat = Heartbeat(self.app.db, self.app.worker_id, "worker").start()  # tasker_workers_active
        threads = [
            threading.Thread(target=self._loop, args=(idle, deadline), name=f"tasker-worker-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        heartbeat.stop()
        return self.passes

    def _loop(self, idle: threading.Event | None, deadline: float | None) -> None:
        try:
            self._poll(idle, deadline)
        except BaseException:  # outside any pass: this worker cannot go on, and says so
            logger.critical("worker %s cannot continue", self.app.worker_id, exc_info=True)
            self.failed = True
            self.stop()

    def _poll(self, idle: threading.Event | None, deadline: float | None) -> None:
        worker_id = self.app.worker_id
        while not self.stopping.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return
            self._recover()
            try:
                task_id = claim_next_task(self.app, worker_id)
            except StoreError as exc:
                self._database_lost(exc)
                self.stopping.wait(self.poll_interval)
                continue
            self._database_back()
            if task_id is None:
                if idle is not None and not self._work_pending():
                    return
                self.stopping.wait(self.poll_interval)
                continue
            self._run_pass(task_id, self.stopping.is_set)

    def _run_pass(self, task_id: int, should_stop: Callable[[], bool]) -> None:
        """One pass; whatever it raises is logged once with the task id and the loop goes on.

        The pass itself releases the task's claim when something escapes it, so another worker may retry it.
        """
        try:
            status = self.app.run_task(task_id, should_stop=should_stop)
            logger.debug("worker %s: pass of task %s -> %s", self.app.worker_id, task_id, status)
        except StoreError as exc:  # the database went away mid-pass: the claims expire and the work is retried
            self._database_lost(exc)
        except (KeyboardInterrupt, SystemExit) as exc:  # raised by user code in this thread, not a signal
            logger.warning("worker %s: pass of task %s interrupted by %r", self.app.worker_id, task_id, exc)
        except BaseException:
            logger.exception("worker %s: pass of task %s failed", self.app.worker_id, task_id)
        with self._lock:
            self.passes += 1

    def _database_lost(self, exc: StoreError) -> None:
        """One WARNING when the database goes away (tracebacks at DEBUG)."""
        with self._lock:
            first, self._database_down = not self._database_down, True
        if first:
            logger.warning("worker %s: lost the database, retrying: %s", self.app.worker_id, _first_line(exc))
        logger.debug("worker %s: database error", self.app.worker_id, exc_info=exc)

    def _database_back(self) -> None:
        """One INFO when the database is reachable again."""
        if not self._database_down:
            return
        with self._lock:
            back, self._database_down = self._database_down, False
        if back:
            logger.info("worker %s: the database is reachable again", self.app.worker_id)

    def _recover(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_recovery < self.recovery_interval:
                return
            self._last_recovery = now
        try:
            self.app.recover_expired_claims()
        except StoreError as exc:
            self._database_lost(exc)

    def _work_pending(self) -> bool:
        """Whether any task is still unfinished (pending later, or in progress elsewhere)."""
        with self.app.db.read() as session:
            return (
                session.execute(
                    select(_TASKS.c.task_id).where(_TASKS.c.status.in_((PENDING, IN_PROGRESS))).limit(1)
                ).first()
                is not None
            )
