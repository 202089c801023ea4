"""Plain snapshots of tasks and steps, handed to step handlers and returned by ``app.get_task``/``list_tasks``.

They hold no database session, so they are safe to pass between threads and to keep after the
session is gone. A handler may set ``step.results``; the engine persists it after ``process()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class StepView:
    """One workflow step of a task."""

    step_id: int
    task_id: int
    name: str
    status: str
    attempts: int
    retry_limit: int
    retryable: bool
    results: Any = None
    inputs: Any = None
    processed: bool = False
    processed_at: datetime | None = None
    started_at: datetime | None = None
    last_attempted_at: datetime | None = None
    next_retry_at: datetime | None = None
    backoff_request_seconds: float | None = None
    in_process: bool = False
    skippable: bool = False
    parent_names: tuple[str, ...] = ()
    #: The error message of the step's latest failed attempt, secrets masked (filled by ``app.get_task``).
    last_error: str | None = None
    #: When the running attempt's ``timeout_seconds`` runs out (UTC); None without a timeout.
    deadline: datetime | None = None

    def past_deadline(self) -> bool:
        """Whether the running attempt is past its deadline: its result will be discarded, so stop early."""
        return self.deadline is not None and datetime.now(UTC) >= self.deadline


@dataclass
class TaskView:
    """A task with its identity, context and (when loaded) its steps."""

    task_id: int
    name: str
    namespace: str
    version: str
    status: str
    context: dict[str, Any]
    complete: bool = False
    initiator: str = "unknown"
    source_system: str = "unknown"
    reason: str = "unknown"
    tags: list[str] = field(default_factory=list)
    requested_at: datetime | None = None
    created_at: datetime | None = None
    steps: list[StepView] = field(default_factory=list)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: Number of steps, and how many are complete or resolved manually (filled even when ``steps`` is not).
    steps_total: int = 0
    steps_complete: int = 0
    #: Seconds from creation to completion; for an unfinished task, until the snapshot was taken.
    duration: float | None = None
    #: The latest error message among the task's steps (one line, secrets masked), or None.
    last_error: str | None = None
    #: The OpenTelemetry trace id (32 hex digits) of the task's trace.
    trace_id: str | None = None

    @property
    def full_name(self) -> str:
        """``namespace.name@version``."""
        return f"{self.namespace}.{self.name}@{self.version}"

    def step(self, name: str) -> StepView:
        """The step called ``name``; KeyError if the task has none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class StepSequence:
    """The steps of a task as seen by a running handler; other steps load on first use."""

    def __init__(
        self,
        steps: list[StepView],
        load_step: Callable[[str], StepView | None],
        load_all: Callable[[], list[StepView]],
    ) -> None:
        self._by_name = {s.name: s for s in steps}
        self._load_step = load_step
        self._load_all = load_all
        self._complete = False

    def find_step_by_name(self, name: str) -> StepView | None:
        """The step called ``name`` (its latest persisted state), or None."""
        step = self._by_name.get(name)
        if step is None and not self._complete:
            step = self._load_step(name)
            if step is not None:
                self._by_name[name] = step
        return step

    @property
    def steps(self) -> list[StepView]:
        """Every step of the task, in creation order."""
        if not self._complete:
            for step in self._load_all():
                self._by_name.setdefault(step.name, step)
            self._complete = True
        return sorted(self._by_name.values(), key=lambda s: s.step_id)

    def __iter__(self) -> Iterator[StepView]:
        return iter(self.steps)
