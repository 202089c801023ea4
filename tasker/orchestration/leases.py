"""Lease renewal: while this process runs a task's pass or a step, its claims' leases keep being extended.

A step's claim carries a lease (``execution.step_lease_seconds``), and so does a task's claim while a pass runs
(``claim_expires_at``); an expired claim is taken to belong to a dead worker and its work is run again. So that
a handler or a pass running longer than the lease is not mistaken for a dead one, a keeper thread renews the
claims this process holds every third of the lease, from the moment each is taken until its outcome is
recorded. When the process dies the renewals stop and the leases run out, which is what recovery needs.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, update

from tasker.db import Database
from tasker.errors import StoreError
from tasker.models import Task, WorkflowStep
from tasker.models.base import utcnow
from tasker.state.states import IN_PROGRESS

logger = logging.getLogger(__name__)

_STEPS = cast(Table, WorkflowStep.__table__)
_TASKS = cast(Table, Task.__table__)
_RENEW_STEPS = (
    update(_STEPS)
    .where(_STEPS.c.claimed_by.in_(bindparam("b_tokens", expanding=True)), _STEPS.c.in_process.is_(True))
    .values(lease_expires_at=bindparam("b_lease"))
)
#: Only a task still in the pass's hands: one a finalization released (pending, terminal) is left alone.
_RENEW_TASKS = (
    update(_TASKS)
    .where(
        _TASKS.c.task_id.in_(bindparam("b_ids", expanding=True)),
        _TASKS.c.status == IN_PROGRESS,
        _TASKS.c.claim_expires_at.is_not(None),
    )
    .values(claim_expires_at=bindparam("b_lease"))
)


class LeaseKeeper:
    """Renews the leases of the step claims and task claims this process holds."""

    def __init__(self, db: Database, lease_seconds: float) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self._tokens: set[str] = set()
        self._tasks: dict[int, int] = {}  # task id -> passes holding it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def hold(self, token: str) -> None:
        """Keep renewing the lease of step claim ``token`` until :meth:`release`."""
        with self._lock:
            self._tokens.add(token)
            self._start()

    def release(self, token: str) -> None:
        """Stop renewing step claim ``token``."""
        with self._lock:
            self._tokens.discard(token)

    def hold_task(self, task_id: int) -> None:
        """Keep renewing the claim on task ``task_id`` (while it is in progress) until :meth:`release_task`."""
        with self._lock:
            self._tasks[task_id] = self._tasks.get(task_id, 0) + 1
            self._start()

    def release_task(self, task_id: int) -> None:
        """Stop renewing the claim on task ``task_id``."""
        with self._lock:
            left = self._tasks.pop(task_id, 1) - 1
            if left > 0:
                self._tasks[task_id] = left

    def _start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tasker-lease-keeper", daemon=True)
            self._thread.start()

    def renew(self) -> int:
        """Extend every held lease now; returns how many claims were renewed."""
        with self._lock:
            tokens, task_ids = sorted(self._tokens), sorted(self._tasks)
        if not tokens and not task_ids:
            return 0
        lease = utcnow() + timedelta(seconds=self.lease_seconds)
        renewed = 0
        with self.db.connection() as connection:
            if tokens:
                renewed += connection.execute(_RENEW_STEPS, {"b_tokens": tokens, "b_lease": lease}).rowcount
            if task_ids:
                renewed += connection.execute(_RENEW_TASKS, {"b_ids": task_ids, "b_lease": lease}).rowcount
        return renewed

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.renew()
            except StoreError as exc:  # the leases may lapse; outcome writes will then be discarded
                if not self._failing:
                    logger.warning("could not renew claim leases: %s", exc)
                self._failing = True
                logger.debug("lease renewal failed", exc_info=True)
            else:
                self._failing = False

    def stop(self) -> None:
        """Stop the keeper thread."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
