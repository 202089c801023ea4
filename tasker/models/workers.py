"""Worker heartbeats: one row per live worker process, refreshed while it runs (``tasker_workers_active``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tasker.models.base import Base, utcnow


class WorkerHeartbeat(Base):
    """A worker process (``tasker worker`` or a Celery pool process) and when it was last seen alive."""

    __tablename__ = "tasker_workers"
    __table_args__ = (Index(None, "last_seen_at"),)

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: ``worker`` (database polling) or ``celery``.
    kind: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
