"""The executor interface and the inline executor (the calling process runs passes)."""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    """Where passes of a task run."""

    name: str

    def enqueue(self, task_id: int, delay: float = 0.0) -> None:
        """Arrange for a pass of ``task_id`` in ``delay`` seconds."""
        ...

    def shutdown(self) -> None:
        """Release resources."""
        ...


class InlineExecutor:
    """Passes run when the caller asks (``run_task`` / ``run_until_done``); enqueue records nothing more."""

    name = "inline"

    def enqueue(self, task_id: int, delay: float = 0.0) -> None:
        """Nothing to do: the task's ``run_at`` is already persisted."""

    def shutdown(self) -> None:
        """Nothing to release."""
