"""Lease renewal: while this process runs a step, its claim's lease keeps being extended.

A step's claim carries a lease (``execution.step_lease_seconds``); a claim whose lease expired is taken to
belong to a dead worker and the step is run again. So that a handler running longer than the lease is not
mistaken for a dead one, a keeper thread renews the leases of the claims this process holds every third of
the lease. When the process dies the renewals stop and the lease runs out, which is what recovery needs.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, update

from tasker.db import Database
from tasker.errors import StoreError
from tasker.models import WorkflowStep
from tasker.models.base import utcnow

logger = logging.getLogger(__name__)

_STEPS = cast(Table, WorkflowStep.__table__)
_RENEW = (
    update(_STEPS)
    .where(_STEPS.c.claimed_by.in_(bindparam("b_tokens", expanding=True)), _STEPS.c.in_process.is_(True))
    .values(lease_expires_at=bindparam("b_lease"))
)


class LeaseKeeper:
    """Renews the leases of the step claims this process holds."""

    def __init__(self, db: Database, lease_seconds: float) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, token: str) -> None:
        """Keep renewing the lease of claim ``token`` until :meth:`release`."""
        with self._lock:
            self._tokens.add(token)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="tasker-lease-keeper", daemon=True)
                self._thread.start()

    def release(self, token: str) -> None:
        """Stop renewing claim ``token``."""
        with self._lock:
            self._tokens.discard(token)

    def renew(self) -> int:
        """Extend every held lease now; returns how many claims were renewed."""
        with self._lock:
            tokens = sorted(self._tokens)
        if not tokens:
            return 0
        lease = utcnow() + timedelta(seconds=self.lease_seconds)
        with self.db.connection() as connection:
            result = connection.execute(_RENEW, {"b_tokens": tokens, "b_lease": lease})
        return result.rowcount

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.renew()
            except StoreError:  # the lease may lapse; the outcome write will then be discarded
                logger.warning("could not renew step leases", exc_info=True)

    def stop(self) -> None:
        """Stop the keeper thread."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
