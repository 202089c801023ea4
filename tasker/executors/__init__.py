"""Executors decide where passes of a task run: inline (this process), database workers, or Celery.

An executor has one required method, :meth:`Executor.enqueue`, called when a task becomes runnable
(created, or left pending with a re-run delay). The due time is always persisted on the task
(``run_at``), so nothing is lost if a message is: database workers poll it, and ``run_until_done``
sleeps until it.
"""

from tasker.executors.base import Executor, InlineExecutor
from tasker.executors.worker import Worker, claim_next_task

__all__ = ["Executor", "InlineExecutor", "Worker", "claim_next_task"]
