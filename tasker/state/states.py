"""The six states shared by tasks and steps, the allowed edges, and the event each edge fires."""

from __future__ import annotations

PENDING = "pending"
IN_PROGRESS = "in_progress"
COMPLETE = "complete"
ERROR = "error"
CANCELLED = "cancelled"
RESOLVED_MANUALLY = "resolved_manually"

STATES: tuple[str, ...] = (PENDING, IN_PROGRESS, COMPLETE, ERROR, CANCELLED, RESOLVED_MANUALLY)

#: States that satisfy a dependency and count toward task completion.
COMPLETED_STATES: frozenset[str] = frozenset({COMPLETE, RESOLVED_MANUALLY})
#: States a task never leaves on its own.
TERMINAL_TASK_STATES: frozenset[str] = frozenset({COMPLETE, ERROR, CANCELLED, RESOLVED_MANUALLY})

TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({IN_PROGRESS, CANCELLED, ERROR}),
    IN_PROGRESS: frozenset({COMPLETE, ERROR, CANCELLED, PENDING}),
    ERROR: frozenset({PENDING, RESOLVED_MANUALLY}),
    COMPLETE: frozenset({CANCELLED}),
    RESOLVED_MANUALLY: frozenset({CANCELLED}),
    CANCELLED: frozenset(),
}

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({IN_PROGRESS, ERROR, CANCELLED, RESOLVED_MANUALLY}),
    IN_PROGRESS: frozenset({COMPLETE, ERROR, CANCELLED}),
    ERROR: frozenset({PENDING, RESOLVED_MANUALLY}),
    COMPLETE: frozenset(),
    CANCELLED: frozenset(),
    RESOLVED_MANUALLY: frozenset(),
}

_TASK_BY_TARGET = {
    PENDING: "task.initialize_requested",
    IN_PROGRESS: "task.start_requested",
    COMPLETE: "task.completed",
    ERROR: "task.failed",
    CANCELLED: "task.cancelled",
    RESOLVED_MANUALLY: "task.resolved_manually",
}
_STEP_BY_TARGET = {
    PENDING: "step.initialize_requested",
    IN_PROGRESS: "step.execution_requested",
    COMPLETE: "step.completed",
    ERROR: "step.failed",
    CANCELLED: "step.cancelled",
    RESOLVED_MANUALLY: "step.resolved_manually",
}

#: (from_state or None, to_state) -> event name (reference §2.6).
TASK_TRANSITION_EVENTS: dict[tuple[str | None, str], str] = {
    **{(None, to): name for to, name in _TASK_BY_TARGET.items()},
    **{(src, to): _TASK_BY_TARGET[to] for src, targets in TASK_TRANSITIONS.items() for to in targets},
    (ERROR, PENDING): "task.retry_requested",
}
STEP_TRANSITION_EVENTS: dict[tuple[str | None, str], str] = {
    **{(None, to): name for to, name in _STEP_BY_TARGET.items()},
    **{(src, to): _STEP_BY_TARGET[to] for src, targets in STEP_TRANSITIONS.items() for to in targets},
    (ERROR, PENDING): "step.retry_requested",
}


def event_for_transition(kind: str, from_state: str | None, to_state: str) -> str | None:
    """The lifecycle event a transition fires, or None for an unmapped pair."""
    table = TASK_TRANSITION_EVENTS if kind == "task" else STEP_TRANSITION_EVENTS
    return table.get((from_state, to_state))
