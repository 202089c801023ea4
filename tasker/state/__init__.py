"""Task and step state machines (reference §2): states, allowed edges, guards, transition events."""

from tasker.state.machine import StepStateMachine, TaskStateMachine, Transition, apply_transition
from tasker.state.states import (
    STATES,
    STEP_TRANSITION_EVENTS,
    STEP_TRANSITIONS,
    TASK_TRANSITION_EVENTS,
    TASK_TRANSITIONS,
    event_for_transition,
)

__all__ = [
    "STATES",
    "STEP_TRANSITIONS",
    "STEP_TRANSITION_EVENTS",
    "TASK_TRANSITIONS",
    "TASK_TRANSITION_EVENTS",
    "StepStateMachine",
    "TaskStateMachine",
    "Transition",
    "apply_transition",
    "event_for_transition",
]
