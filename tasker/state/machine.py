"""State machines over the transition tables.

A transition is one conditional ``UPDATE`` of the entity's current ``status`` (so two writers cannot
both move the same entity from the same state), one flip of the previous ``most_recent`` row and one
insert into the log with the next ``sort_key`` - all in the caller's database transaction. Events are
not published here: callers publish the returned :class:`Transition` after their transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from sqlalchemy import Connection, Table, Update, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from tasker.errors import GuardFailedError, InvalidStateTransition
from tasker.models.base import utcnow
from tasker.models.instances import (
    Task,
    TaskTransition,
    WorkflowStep,
    WorkflowStepEdge,
    WorkflowStepTransition,
)
from tasker.state.states import (
    COMPLETE,
    COMPLETED_STATES,
    IN_PROGRESS,
    STATES,
    STEP_TRANSITION_EVENTS,
    STEP_TRANSITIONS,
    TASK_TRANSITION_EVENTS,
    TASK_TRANSITIONS,
    event_for_transition,
)

Kind = Literal["task", "step"]

_TASKS, _STEPS = cast(Table, Task.__table__), cast(Table, WorkflowStep.__table__)
_TASK_LOG = cast(Table, TaskTransition.__table__)
_STEP_LOG = cast(Table, WorkflowStepTransition.__table__)
#: Core tables (not ORM entities) on the hot path: no ORM bulk-persistence overhead per statement.
_TABLES: dict[str, tuple[Any, Any, Any, Any]] = {
    "task": (_TASKS, _TASK_LOG, _TASKS.c.task_id, _TASK_LOG.c.task_id),
    "step": (_STEPS, _STEP_LOG, _STEPS.c.workflow_step_id, _STEP_LOG.c.workflow_step_id),
}
_EDGES = cast(Table, WorkflowStepEdge.__table__)
_DECREMENT_CHILDREN = (
    update(_STEPS)
    .where(
        _STEPS.c.workflow_step_id.in_(
            select(_EDGES.c.to_step_id).where(_EDGES.c.from_step_id == bindparam("parent_id"))
        )
    )
    .values(unsatisfied_parents=_STEPS.c.unsatisfied_parents - 1)
)


@dataclass(frozen=True)
class Transition:
    """A state change that was written: what to publish once the transaction commits."""

    kind: Kind
    entity_id: int
    from_state: str
    to_state: str
    event: str | None
    sort_key: int
    at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


def status_update(kind: Kind) -> Update:
    """``UPDATE <entity> SET ... WHERE id = :b_id AND status = :b_from``; add guards with ``.where()``.

    The SET clause comes from the execution parameters, so one prebuilt statement serves every
    transition (SQLAlchemy caches its compiled form per parameter-key set).
    """
    entity, _log, pk, _fk = _TABLES[kind]
    return update(entity).where(pk == bindparam("b_id"), entity.c.status == bindparam("b_from"))


_STATUS_UPDATE: dict[str, Update] = {"task": status_update("task"), "step": status_update("step")}
_FLIP_MOST_RECENT = {
    kind: update(log).where(fk == bindparam("b_id"), log.c.most_recent.is_(True)).values(most_recent=False)
    .returning(log.c.sort_key)
    for kind, (_e, log, _pk, fk) in _TABLES.items()
}  # fmt: skip
_FLIP_KNOWN = {
    kind: update(log).where(fk == bindparam("b_id"), log.c.most_recent.is_(True)).values(most_recent=False)
    for kind, (_e, log, _pk, fk) in _TABLES.items()
}
_INSERT_LOG = {kind: insert(log) for kind, (_e, log, _pk, _fk) in _TABLES.items()}


@dataclass(frozen=True)
class Move:
    """One transition requested of :func:`apply_transitions`."""

    entity_id: int
    from_state: str
    to_state: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Extra columns written in the entity's ``UPDATE``.
    values: dict[str, Any] = field(default_factory=dict)
    #: Extra bind parameters of a guarded statement.
    params: dict[str, Any] = field(default_factory=dict)
    #: The sort key of the entity's latest log row, when the caller wrote that row in this transaction.
    previous_sort_key: int | None = None


def apply_transition(
    session: Session | Connection,
    kind: Kind,
    entity_id: int,
    from_state: str,
    to_state: str,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    *,
    statement: Update | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Transition | None:
    """Move an entity ``from_state -> to_state`` if it is still in ``from_state``; None otherwise.

    ``values`` are extra columns written in the same ``UPDATE``. ``statement`` is a guarded variant of
    :func:`status_update` (e.g. a claim that also requires the step to be ready) whose extra bind
    parameters come in ``params``. The edge itself is not checked here: callers use allowed edges.
    """
    move = Move(entity_id, from_state, to_state, dict(metadata or {}), dict(values or {}), dict(params or {}))
    return apply_transitions(session, kind, [move], statement=statement, now=now)[0]


def apply_transitions(
    session: Session | Connection,
    kind: Kind,
    moves: Sequence[Move],
    *,
    statement: Update | None = None,
    now: datetime | None = None,
) -> list[Transition | None]:
    """:func:`apply_transition` of several entities in the caller's transaction; None where one lost its race.

    Each conditional ``UPDATE`` runs alone, so each entity may lose its race on its own. The log rows of the
    entities that moved take one ``executemany`` each: the flip of the previous ``most_recent`` row (one
    ``UPDATE ... RETURNING`` per entity instead when its ``previous_sort_key`` is unknown), the insert, and for
    steps that completed the readiness counters of their children.
    """
    now = now or utcnow()
    _entity, _log, _pk, fk = _TABLES[kind]
    written: list[Transition | None] = []
    known: list[dict[str, Any]] = []
    for move in moves:
        result = session.execute(
            statement if statement is not None else _STATUS_UPDATE[kind],
            {
                "b_id": move.entity_id, "b_from": move.from_state, "status": move.to_state, "updated_at": now,
                **move.values, **move.params,
            },
        )  # fmt: skip
        if result.rowcount != 1:  # type: ignore[attr-defined]
            written.append(None)
            continue
        previous = move.previous_sort_key
        if previous is None:
            previous = session.execute(_FLIP_MOST_RECENT[kind], {"b_id": move.entity_id}).scalar()
        else:
            known.append({"b_id": move.entity_id})
        event = event_for_transition(kind, move.from_state, move.to_state)
        sort_key, meta = (previous or 0) + 1, dict(move.metadata)
        written.append(Transition(kind, move.entity_id, move.from_state, move.to_state, event, sort_key, now, meta))
    moved = [t for t in written if t is not None]
    if not moved:
        return written
    if known:  # before the insert: the new rows are the most recent ones
        session.execute(_FLIP_KNOWN[kind], known)
    session.execute(
        _INSERT_LOG[kind],
        [
            {
                fk.key: t.entity_id, "to_state": t.to_state, "from_state": t.from_state, "metadata": t.metadata,
                "sort_key": t.sort_key, "most_recent": True, "created_at": now, "updated_at": now,
            }
            for t in moved
        ],
    )  # fmt: skip
    parents = [
        {"parent_id": t.entity_id}
        for t in moved
        if kind == "step" and t.to_state in COMPLETED_STATES and t.from_state not in COMPLETED_STATES
    ]
    if parents:
        session.execute(_DECREMENT_CHILDREN, parents)
    return written


class _StateMachine:
    """Shared behaviour of the task and step machines (reference §2.4)."""

    kind: ClassVar[Kind]
    edges: ClassVar[dict[str, frozenset[str]]]
    events: ClassVar[dict[tuple[str | None, str], str]]

    def __init__(self, session: Session, entity_id: int) -> None:
        self.session = session
        self.entity_id = entity_id

    @property
    def current_state(self) -> str:
        """The entity's current state."""
        raise NotImplementedError

    def _guard(self, to_state: str) -> str | None:
        """Why a transition to ``to_state`` is refused, or None when the guard passes."""
        return None

    def can_transition_to(self, to_state: str) -> bool:
        """Whether ``transition_to(to_state)`` would succeed now."""
        return to_state in self.edges.get(self.current_state, frozenset()) and self._guard(to_state) is None

    def transition_to(self, to_state: str, metadata: dict[str, Any] | None = None) -> Transition:
        """Apply an allowed, guarded transition; raise InvalidStateTransition / GuardFailedError."""
        if to_state not in STATES:
            raise InvalidStateTransition(self.kind, self.entity_id, self.current_state, to_state)
        current = self.current_state
        if to_state not in self.edges[current]:
            raise InvalidStateTransition(self.kind, self.entity_id, current, to_state)
        reason = self._guard(to_state)
        if reason is not None:
            raise GuardFailedError(self.kind, self.entity_id, to_state, reason)
        written = apply_transition(self.session, self.kind, self.entity_id, current, to_state, metadata)
        if written is None:  # another writer moved it between our read and our write
            raise InvalidStateTransition(self.kind, self.entity_id, self.current_state, to_state)
        return written

    def safe_transition_to(self, to_state: str, metadata: dict[str, Any] | None = None) -> Transition | None:
        """Idempotent variant: None (no row, no event) when already there, disallowed or guarded."""
        if self.current_state == to_state or not self.can_transition_to(to_state):
            return None
        try:
            return self.transition_to(to_state, metadata)
        except (InvalidStateTransition, GuardFailedError):
            return None

    def conditional_transition_to(
        self, to_state: str, allowed_from: frozenset[str] | set[str], metadata: dict[str, Any] | None = None
    ) -> Literal["already_target", "invalid_from_state", "transitioned"]:
        """Transition only from one of ``allowed_from``."""
        current = self.current_state
        if current == to_state:
            return "already_target"
        if current not in allowed_from:
            return "invalid_from_state"
        self.transition_to(to_state, metadata)
        return "transitioned"

    def history(self) -> list[Any]:
        """The transition rows of this entity, oldest first."""
        raise NotImplementedError


class TaskStateMachine(_StateMachine):
    """Task states: completion requires every step complete or resolved manually."""

    kind = "task"
    edges = TASK_TRANSITIONS
    events = TASK_TRANSITION_EVENTS

    @property
    def current_state(self) -> str:
        status = self.session.scalar(select(Task.status).where(Task.task_id == self.entity_id))
        if status is None:
            raise LookupError(f"no task with id {self.entity_id}")
        return status

    def _guard(self, to_state: str) -> str | None:
        if to_state != COMPLETE:
            return None
        open_steps = self.session.scalar(
            select(func.count())
            .select_from(WorkflowStep)
            .where(WorkflowStep.task_id == self.entity_id, WorkflowStep.status.not_in(COMPLETED_STATES))
        )
        return f"{open_steps} step(s) not complete" if open_steps else None

    def history(self) -> list[TaskTransition]:
        return list(
            self.session.scalars(
                select(TaskTransition).where(TaskTransition.task_id == self.entity_id).order_by(TaskTransition.sort_key)
            )
        )


class StepStateMachine(_StateMachine):
    """Step states: starting requires every parent step complete or resolved manually."""

    kind = "step"
    edges = STEP_TRANSITIONS
    events = STEP_TRANSITION_EVENTS

    @property
    def current_state(self) -> str:
        status = self.session.scalar(select(WorkflowStep.status).where(WorkflowStep.workflow_step_id == self.entity_id))
        if status is None:
            raise LookupError(f"no step with id {self.entity_id}")
        return status

    def _guard(self, to_state: str) -> str | None:
        if to_state != IN_PROGRESS:
            return None
        parent = WorkflowStep.__table__.alias("parent")
        blocking = list(
            self.session.execute(
                select(parent.c.name)
                .join(WorkflowStepEdge, WorkflowStepEdge.from_step_id == parent.c.workflow_step_id)
                .where(
                    WorkflowStepEdge.to_step_id == self.entity_id,
                    parent.c.status.not_in(COMPLETED_STATES),
                )
            ).scalars()
        )
        return f"dependencies not satisfied: {', '.join(sorted(blocking))}" if blocking else None

    def history(self) -> list[WorkflowStepTransition]:
        return list(
            self.session.scalars(
                select(WorkflowStepTransition)
                .where(WorkflowStepTransition.workflow_step_id == self.entity_id)
                .order_by(WorkflowStepTransition.sort_key)
            )
        )
