"""Executors decide where passes of a task run: inline (this process), database workers, or Celery.

An executor has one required method, :meth:`Executor.enqueue`, called when a task becomes runnable
(created, or left pending with a re-run delay). The due time is always persisted on the task
(``run_at``), so nothing is lost if a message is: database workers poll it, and ``run_until_done``
sleeps until it.

The Celery names (``CeleryExecutor``, ``create_celery_app``, ``get_tasker``) load on first access, so
Celery stays an optional extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tasker.executors.base import Executor, InlineExecutor
from tasker.executors.worker import Worker, claim_next_task

if TYPE_CHECKING:
    from tasker.executors.celery import CeleryExecutor, create_celery_app, get_tasker

_CELERY = ("CeleryExecutor", "create_celery_app", "get_tasker")

__all__ = [
    "CeleryExecutor",
    "Executor",
    "InlineExecutor",
    "Worker",
    "claim_next_task",
    "create_celery_app",
    "get_tasker",
]


def __getattr__(name: str) -> Any:
    if name not in _CELERY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("tasker.executors.celery"), name)
    globals()[name] = value
    return value
