"""State machines over the transition tables.

A transition is one conditional ``UPDATE`` of the entity's current ``status`` (so two writers cannot
both move the same entity from the same state) and one insert into the log with the next ``sort_key``,
in the caller's database transaction. The database does the rest in the same statements (triggers of
migration 0005): inserting a log row clears the ``most_recent`` flag of the entity's previous row, and a
step that completes takes one unsatisfied parent off each of its children. Events are not published here:
callers publish the returned :class:`Transition` after their transaction commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from tasker.db.prepared import Prepared
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


def _log_row(log: Table, entity_id: Any, sort_key: Any) -> Select[Any]:
    """A log row in :func:`_log_columns` order: the entity, the move's ``l_*`` parameters, its sort key; the
    entity's ``most_recent`` row (a trigger clears the flag of the row it was)."""
    return select(
        entity_id,
        bindparam("l_to", type_=log.c.to_state.type),
        bindparam("l_from", type_=log.c.from_state.type),
        bindparam("l_meta", type_=log.c.metadata.type),
        sort_key,
        true(),
        bindparam("l_at", type_=log.c.created_at.type),
        bindparam("l_at", type_=log.c.updated_at.type),
    )


def _log_columns(log: Table, fk: Any) -> list[Any]:
    return [fk, log.c.to_state, log.c.from_state, log.c.metadata, log.c.sort_key, log.c.most_recent,
            log.c.created_at, log.c.updated_at]  # fmt: skip


@dataclass(frozen=True)
class Transition:
    """A state change that was written: what to publish once the transaction commits."""

    kind: Kind
    entity_id: int
    from_state: str
    to_state: str
    event: str | None
    at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


class StatusUpdate:
    """``UPDATE <entity> SET status, updated_at, <values> WHERE id = :b_id AND status = :b_from AND <guards>``.

    The SET columns are the keys of each move's ``values``: one prepared statement per key set, compiled once.
    Guards add conditions with :meth:`where`; their bind parameters come in each move's ``params``.

    On PostgreSQL, where each statement is a round trip, :meth:`run_whole` writes a whole transition in one
    statement: this update and, if it moved the entity, the insert of its next log row.
    """

    def __init__(self, kind: Kind, guards: tuple[ColumnElement[bool], ...] = ()) -> None:
        self.kind = kind
        self.guards = guards
        entity, _log, pk, _fk = _TABLES[kind]
        self._base = update(entity).where(pk == bindparam("b_id"), entity.c.status == bindparam("b_from"), *guards)
        self._prepared: dict[tuple[str, ...], tuple[Prepared, tuple[str, ...]]] = {}
        self._whole: dict[tuple[str, ...], tuple[Prepared, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def where(self, *guards: ColumnElement[bool]) -> StatusUpdate:
        """This update with more conditions."""
        return StatusUpdate(self.kind, (*self.guards, *guards))

    def _update(self, keys: tuple[str, ...]) -> tuple[Update, tuple[str, ...]]:
        """The update setting ``status``, ``updated_at`` and ``keys``, and its parameter names in that order."""
        columns = ("status", "updated_at", *keys)
        if len(set(columns)) != len(columns):
            raise ValueError(f"a transition's values set status or updated_at, or a column twice: {keys}")
        names = tuple(f"v_{column}" for column in columns)
        return self._base.values({column: bindparam(name) for column, name in zip(columns, names, strict=True)}), names

    def _cached(
        self,
        cache: dict[tuple[str, ...], tuple[Prepared, tuple[str, ...]]],
        keys: tuple[str, ...],
        build: Callable[[tuple[str, ...]], tuple[ClauseElement, tuple[str, ...]]],
    ) -> tuple[Prepared, tuple[str, ...]]:
        """The prepared statement ``build`` makes for ``keys`` (compiled once), and its parameter names."""
        found = cache.get(keys)
        if found is None:
            statement, names = build(keys)
            with self._lock:
                found = cache.setdefault(keys, (Prepared(statement), names))
        return found

    def _params(self, move: Move, now: datetime, names: tuple[str, ...]) -> dict[str, Any]:
        params = dict(zip(names, (move.to_state, now, *move.values.values()), strict=True))
        params.update(move.params, b_id=move.entity_id, b_from=move.from_state)
        return params

    def run(self, connection: Connection, move: Move, now: datetime) -> bool:
        """Apply the move's entity update; whether the entity was still in ``from_state`` (and the guards held)."""
        prepared, names = self._cached(self._prepared, tuple(move.values), self._update)
        return prepared.execute(connection, self._params(move, now, names)) == 1

    def run_whole(self, connection: Connection, move: Move, now: datetime) -> bool:
        """PostgreSQL: the whole transition (see the class); whether it was written."""
        prepared, names = self._cached(self._whole, tuple(move.values), self._whole_statement)
        params = self._params(move, now, names)
        params.update(l_to=move.to_state, l_from=move.from_state, l_meta=move.metadata, l_at=now)
        return prepared.execute(connection, params) == 1

    def _whole_statement(self, keys: tuple[str, ...]) -> tuple[Insert, tuple[str, ...]]:
        _entity, log, pk, fk = _TABLES[self.kind]
        update_, names = self._update(keys)
        moved = update_.returning(pk.label("entity_id")).cte("moved")
        last = select(func.max(log.c.sort_key)).where(fk == moved.c.entity_id).scalar_subquery()
        row = _log_row(log, moved.c.entity_id, func.coalesce(last, 0) + 1)
        return insert(log).from_select(_log_columns(log, fk), row).add_cte(moved), names


def status_update(kind: Kind) -> StatusUpdate:
    """The unguarded status update of ``kind``; add guards with ``.where()``."""
    return StatusUpdate(kind)


def _log_insert(kind: Kind) -> Prepared:
    """The insert of an entity's next log row (``sort_key`` = last + 1)."""
    _entity, log, _pk, fk = _TABLES[kind]
    next_row = _log_row(log, bindparam("l_id", type_=fk.type), func.coalesce(func.max(log.c.sort_key), 0) + 1).where(
        fk == bindparam("l_id")
    )
    return Prepared(insert(log).from_select(_log_columns(log, fk), next_row))


_STATUS_UPDATE: dict[str, StatusUpdate] = {"task": status_update("task"), "step": status_update("step")}
_LOG_INSERTS = {kind: _log_insert(kind) for kind in ("task", "step")}


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


class TransitionWriter:
    """The transitions of one database transaction.

    :meth:`apply` runs each entity's conditional ``UPDATE`` at once (each entity may lose its race on its own;
    a step that completes has its children's readiness counters updated by the same statement, so readiness
    queries later in the transaction see them). The log rows wait for :meth:`flush`, which writes every row
    of the transaction in one ``executemany`` per kind, each row's ``sort_key`` the entity's last + 1.
    On PostgreSQL, :meth:`apply` writes each transition whole, in one statement (:meth:`StatusUpdate.run_whole`),
    and :meth:`flush` has nothing left to write.
    """

    def __init__(self, session: Session | Connection, now: datetime | None = None) -> None:
        self.connection = session.connection() if isinstance(session, Session) else session
        self.now = now or utcnow()
        self._whole = self.connection.dialect.name == "postgresql"
        self._pending: dict[Kind, list[Transition]] = {"task": [], "step": []}

    def apply(
        self, kind: Kind, moves: Sequence[Move], statement: StatusUpdate | None = None
    ) -> list[Transition | None]:
        """Move each entity ``from_state -> to_state`` if it still is in ``from_state``; None where it was not."""
        now, connection, whole = self.now, self.connection, self._whole
        update_ = statement if statement is not None else _STATUS_UPDATE[kind]
        run = update_.run_whole if whole else update_.run
        written: list[Transition | None] = []
        for move in moves:
            if not run(connection, move, now):
                written.append(None)
                continue
            event = event_for_transition(kind, move.from_state, move.to_state)
            transition = Transition(
                kind, move.entity_id, move.from_state, move.to_state, event, now, dict(move.metadata)
            )
            written.append(transition)
            if not whole:
                self._pending[kind].append(transition)
        return written

    def flush(self) -> None:
        """Write the log rows of every transition applied so far (before the transaction commits)."""
        for kind, transitions in self._pending.items():
            if transitions:
                _LOG_INSERTS[kind].executemany(
                    self.connection,
                    [
                        {"l_id": t.entity_id, "l_to": t.to_state, "l_from": t.from_state, "l_meta": t.metadata,
                         "l_at": t.at}
                        for t in transitions
                    ],
                )  # fmt: skip
                transitions.clear()


def apply_transition(
    session: Session | Connection,
    kind: Kind,
    entity_id: int,
    from_state: str,
    to_state: str,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    *,
    statement: StatusUpdate | None = None,
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
    statement: StatusUpdate | None = None,
    now: datetime | None = None,
) -> list[Transition | None]:
    """:func:`apply_transition` of several entities in the caller's transaction, log rows written at once."""
    writer = TransitionWriter(session, now)
    written = writer.apply(kind, moves, statement)
    writer.flush()
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
