"""The coordinator: one orchestration pass of a task, finalization and re-enqueue (reference §5.3-§5.6).

A pass starts the task (``pending -> in_progress``), recovers steps whose claim lease expired, then
loops: find ready steps, execute them, stop when an iteration executes nothing or the task is blocked
by failures. Finalization reads the execution context once and moves the task to ``complete``,
``error`` or back to ``pending`` with a computed re-enqueue delay handed to the executor.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from tasker.db import untraced
from tasker.db.prepared import Prepared
from tasker.errors import InvalidStateTransition, StoreError, TaskNotFoundError, TemplateNotFoundError
from tasker.models import NamedTask, Task, TaskNamespace, WorkflowStep
from tasker.models.base import utcnow
from tasker.models.queries import TASK_WITH_TEMPLATE
from tasker.orchestration.payloads import step_payload, task_payload
from tasker.orchestration.readiness import NOW, ExecutionContext, execution_context, find_ready_steps
from tasker.orchestration.runtime import Runtime, TaskInfo, step_view
from tasker.orchestration.steps import Attempt, Outcome, StepExecutor, StepOutcome
from tasker.state.machine import Move, Transition, TransitionWriter, apply_transition, status_update
from tasker.state.states import (
    CANCELLED,
    COMPLETE,
    ERROR,
    IN_PROGRESS,
    PENDING,
    RESOLVED_MANUALLY,
    TASK_TRANSITIONS,
    TERMINAL_TASK_STATES,
    event_for_transition,
)
from tasker.telemetry.logs import task_log_context
from tasker.telemetry.propagation import with_new_task_span
from tasker.views import TaskView

logger = logging.getLogger(__name__)

_MAX_FINALIZE_ATTEMPTS = 5
#: Finalization releases the pass's claim on the task, so it is claimable again at ``run_at``.
_RELEASE: dict[str, Any] = {"claimed_by": None, "claim_expires_at": None}
_STEPS = cast(Table, WorkflowStep.__table__)
#: A step reserved for a worker that never picked it up: un-reserve it (no attempt was made).
_UNRESERVE = (
    update(_STEPS)
    .where(_STEPS.c.in_process.is_(True), _STEPS.c.status.in_((PENDING, ERROR)), _STEPS.c.lease_expires_at < NOW)
    .values(in_process=False, claimed_by=None, lease_expires_at=None)
)
#: An interrupted pass hands its task back: expired now, so any worker may claim it at once.
_TASKS = cast(Table, Task.__table__)
_RELEASE_CLAIM = (
    update(_TASKS)
    .where(_TASKS.c.task_id == bindparam("b_id"), _TASKS.c.status.in_((PENDING, IN_PROGRESS)))
    .values(claimed_by=None, claim_expires_at=bindparam("b_now"))
)
#: Whether any step (of a task: add the condition) holds a claim whose lease expired, reserved or running.
_EXPIRED = (
    select(_STEPS.c.workflow_step_id).where(_STEPS.c.in_process.is_(True), _STEPS.c.lease_expires_at < NOW).limit(1)
)
_EXPIRED_ANY = Prepared(_EXPIRED)
_EXPIRED_OF_TASK = Prepared(_EXPIRED.where(_STEPS.c.task_id == bindparam("b_task")))
_TASK_STATE = Prepared(select(_TASKS.c.status, _TASKS.c.started_at).where(_TASKS.c.task_id == bindparam("b_id")))
#: A task with the identity of its template: what a pass loads.
_LOAD_TASK = Prepared(
    select(
        _TASKS.c.task_id, _TASKS.c.status, _TASKS.c.context, _TASKS.c.created_at, _TASKS.c.started_at,
        _TASKS.c.run_at, _TASKS.c.trace_context, NamedTask.name, NamedTask.version,
        TaskNamespace.name.label("namespace"),
    )
    .select_from(TASK_WITH_TEMPLATE)
    .where(_TASKS.c.task_id == bindparam("b_id"))
)  # fmt: skip
_RECOVER = status_update("step").where(WorkflowStep.in_process.is_(True), WorkflowStep.lease_expires_at < NOW)


def _completed_values(now: datetime) -> dict[str, Any]:
    return {"complete": True, "completed_at": now, "run_at": None, **_RELEASE}


@dataclass(frozen=True)
class _Completion:
    """A task completion written by the pass's last turn, to publish in finalization."""

    context: ExecutionContext
    transition: Transition
    at: datetime


class Coordinator:
    """Runs passes of tasks for one app."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.steps = StepExecutor(runtime)

    def shutdown(self) -> None:
        """Stop the step thread pool."""
        self.steps.shutdown()

    # -- loading -----------------------------------------------------------------------------------

    def load_task(self, task_id: int, pinned: Connection | None = None) -> TaskInfo:
        """The task row with its template; TaskNotFoundError when missing.

        On ``pinned`` (the pass's connection, outside a transaction) when given.
        """
        if pinned is not None:
            with untraced():
                rows = _LOAD_TASK.rows(pinned, {"b_id": task_id})
        else:
            with self.rt.db.read_connection() as connection:
                rows = _LOAD_TASK.rows(connection, {"b_id": task_id})
        if not rows:
            raise TaskNotFoundError(task_id)
        row = rows[0]
        return TaskInfo(
            task_id=row.task_id,
            name=row.name,
            namespace=row.namespace,
            version=row.version,
            status=row.status,
            context=row.context,
            created_at=row.created_at,
            started_at=row.started_at,
            run_at=row.run_at,
            trace_context=row.trace_context,
            template=self.rt.templates.get(row.namespace, row.name, row.version),
        )

    def _context(self, task_id: int) -> ExecutionContext:
        with self.rt.db.read_connection() as session:
            return execution_context(session, task_id)

    # -- a pass --------------------------------------------------------------------------------------

    def run_task(self, task_id: int, should_stop: Callable[[], bool] | None = None) -> str:
        """One orchestration pass; returns the task's status afterwards.

        ``should_stop`` is checked between iterations: when it turns true (a worker shutting down) the
        pass finalizes early and the task goes back to pending for another runner. The task's claim is
        renewed for as long as the pass runs; whatever escapes the pass (an interruption, a database
        error) releases it at once, so another runner can take the task without waiting for its lease.
        """
        with self.rt.db.pinned() as pinned:  # one pooled connection for the whole pass
            task = self.load_task(task_id, pinned)
            if task.status in TERMINAL_TASK_STATES:
                return task.status
            leases = self.steps.leases
            leases.hold_task(task_id)
            try:
                with task_log_context(task.task_id, task.trace_context, self.rt.config.telemetry.propagation):
                    return self._pass(task, pinned, should_stop)
            except BaseException:
                self._release_claim(task_id)
                raise
            finally:
                leases.release_task(task_id)

    def _release_claim(self, task_id: int) -> None:
        """Make an unfinished task claimable again now (best effort: the lease expires anyway)."""
        try:
            with self.rt.db.connection() as connection:
                connection.execute(_RELEASE_CLAIM, {"b_id": task_id, "b_now": utcnow()})
        except StoreError:
            logger.debug("could not release the claim on task %s", task_id, exc_info=True)

    def _pass(self, task: TaskInfo, pinned: Connection, should_stop: Callable[[], bool] | None) -> str:
        self.recover_expired_claims(task, pinned)
        if task.status == ERROR:
            return task.status
        view = TaskView(
            task_id=task.task_id, name=task.name, namespace=task.namespace, version=task.version,
            status=IN_PROGRESS, context=task.context, created_at=task.created_at,
        )  # fmt: skip
        ended = self._iterate(task, view, pinned, should_stop)
        if ended is None:  # another runner finished the task before this pass could start it
            return task.status
        return self.finalize(task, *ended)

    def _iterate(
        self, task: TaskInfo, view: TaskView, pinned: Connection, should_stop: Callable[[], bool] | None
    ) -> tuple[int, _Completion | None] | None:
        """The pass's iterations; how many steps were attempted (or reserved for other workers), and the task's
        completion when the last turn wrote it.

        The first turn also starts the task (``pending -> in_progress``; None when it turned terminal first), and
        a last turn that leaves every step complete also completes the task.

        An iteration runs the steps ready when it starts, at most ``max_concurrent_steps`` at a time; the pass
        goes on while an iteration attempted something and nothing stops it. This thread is the only writer:
        step threads run handlers and hand their attempts back, and each turn of the loop records every
        finished attempt and claims the next steps in **one transaction** (so an outcome is durable before any
        dependent starts), then publishes what it wrote, in order. A turn starts when a step finishes and the
        others running have finished too or ``group_commit_seconds`` passed, whichever comes first.
        """
        execution = self.rt.config.execution
        steps, window, gather = self.steps, execution.max_concurrent_steps, execution.group_commit_seconds
        queue: deque[Any] = deque()  # steps of the current iteration not claimed yet
        running: set[Future[Attempt]] = set()
        finished: list[Attempt] = []
        iteration: list[StepOutcome] | None = None  # outcomes of the current iteration
        interrupt: BaseException | None = None
        processed = 0
        starting = True
        if task.status == PENDING:
            self._before(task, PENDING, IN_PROGRESS)
        try:
            while True:
                outcomes = [steps.outcome(task, attempt) for attempt in finished]
                interrupt = interrupt or next((a.error for a in finished if a.interrupted), None)
                if interrupt is not None:
                    queue.clear()
                over = not queue and not running  # the iteration ends with these outcomes
                ready: list[Any] | None = None
                reserved: list[tuple[int, str]] | None = None
                start: tuple[Transition, datetime] | None = None
                completion: _Completion | None = None
                with self.rt.db.connection(pinned) as connection:  # the one transaction of this turn
                    writer = TransitionWriter(connection)
                    if starting and task.status == PENDING:
                        start = self._write_start(writer, task)
                    steps.write(writer, outcomes)
                    live = task.status not in TERMINAL_TASK_STATES
                    if over and live and interrupt is None and self._goes_on(iteration, outcomes, should_stop):
                        ready = find_ready_steps(connection, task.task_id)
                        if not ready and not running:
                            completion = self._write_completion(writer, task)
                        queue = deque(ready)
                        if self.rt.dispatch is not None and len(ready) > 1:
                            reserved, queue = steps.reserve(connection, ready), deque()
                    claims = steps.claim(writer, task, self._take(queue, window - len(running), outcomes))
                    writer.flush()
                steps.hold(claims)
                if starting:
                    starting = False
                    if start is not None:
                        self._started(task, *start)
                    if not live:
                        return None
                published = [steps.publish(task, outcome) for outcome in outcomes]
                if iteration is not None:
                    iteration += published
                if over:
                    if iteration is not None:
                        self._iteration_completed(task, iteration)
                        processed += sum(1 for o in iteration if o.status != "lost")
                    if interrupt is not None:
                        raise interrupt
                    if not ready:
                        if ready is not None and not any(o.blocked for o in iteration or ()):
                            self.rt.events.emit(
                                "workflow.no_viable_steps",
                                lambda: {"task_id": task.task_id, "reason": "No steps ready for execution"},
                            )
                        return processed, completion
                    self._iteration_started(task, ready, dispatched=reserved is not None)
                    if reserved is not None and self.rt.dispatch is not None:
                        for step_id, token in reserved:
                            self.rt.dispatch(task.task_id, step_id, token)
                        return processed + len(reserved), None
                    iteration = []
                if len(claims) == 1 and not running and not queue:
                    finished = [steps.run(task, view, claims[0])]  # a lone step runs on this thread
                    continue
                running.update(steps.submit(task, view, claim) for claim in claims)
                finished = []
                if running:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    if running and gather > 0:  # group commit: one turn records the steps finishing with it
                        more, running = wait(running, timeout=gather)
                        done |= more
                    finished = [future.result() for future in done]
        except BaseException:
            for attempt in finished:  # outcomes not recorded: their claims lapse with their leases
                steps.leases.release(attempt.claim.token)
            self._abandon(task, running)
            raise

    @staticmethod
    def _take(queue: deque[Any], slots: int, outcomes: list[Outcome]) -> list[Any]:
        """Up to ``slots`` steps off the queue; not one whose failure this turn writes: its retry is claimed
        in a later turn, after the failure is published (an attempt's events never overlap the next one's)."""
        just_failed = {o.attempt.claim.view.step_id for o in outcomes if o.status != COMPLETE}
        taken: list[Any] = []
        skipped: list[Any] = []
        while queue and len(taken) < slots:
            row = queue.popleft()
            (skipped if row.workflow_step_id in just_failed else taken).append(row)
        queue.extendleft(reversed(skipped))
        return taken

    @staticmethod
    def _goes_on(
        iteration: list[StepOutcome] | None, outcomes: list[Outcome], should_stop: Callable[[], bool] | None
    ) -> bool:
        """Whether the pass looks for more ready steps after an iteration (always before the first)."""
        if iteration is None:
            return True
        attempted = any(o.status != "lost" for o in iteration) or any(o.written for o in outcomes)
        return attempted and not (should_stop is not None and should_stop())

    def _iteration_started(self, task: TaskInfo, ready: list[Any], dispatched: bool) -> None:
        events = self.rt.events
        events.emit(
            "workflow.viable_steps_discovered",
            lambda: {
                "task_id": task.task_id, "step_ids": [r.workflow_step_id for r in ready],
                "step_names": [r.name for r in ready], "step_count": len(ready), "processing_mode": "concurrent",
            },
        )  # fmt: skip
        if not dispatched:
            events.emit(
                "workflow.steps_execution_started",
                lambda: {
                    "task_id": task.task_id, "task_name": task.name, "step_count": len(ready),
                    "processing_mode": "concurrent",
                },
            )  # fmt: skip

    def _iteration_completed(self, task: TaskInfo, outcomes: list[StepOutcome]) -> None:
        self.rt.events.emit(
            "workflow.steps_execution_completed",
            lambda: {
                "task_id": task.task_id, "task_name": task.name, "processed_count": len(outcomes),
                "successful_count": sum(1 for o in outcomes if o.status == COMPLETE),
            },
        )  # fmt: skip

    def _abandon(self, task: TaskInfo, running: set[Future[Attempt]]) -> None:
        """The pass is interrupted: wait for the steps still running and record them (best effort)."""
        if not running:
            return
        attempts = [future.result() for future in wait(running).done]
        outcomes = [self.steps.outcome(task, attempt) for attempt in attempts]
        try:
            with self.rt.db.connection() as connection:
                writer = TransitionWriter(connection)
                self.steps.write(writer, outcomes)
                writer.flush()
        except StoreError:
            logger.warning("could not record the steps of interrupted task %s", task.task_id, exc_info=True)
        for outcome in outcomes:
            self.steps.publish(task, outcome)

    def run_step(self, task_id: int, step_id: int, token: str) -> str | None:
        """Run one step reserved for this worker by a dispatching pass, then ask for the next pass."""
        task = self.load_task(task_id)
        with task_log_context(task.task_id, task.trace_context, self.rt.config.telemetry.propagation):
            return self._run_step(task, step_id, token)

    def _run_step(self, task: TaskInfo, step_id: int, token: str) -> str | None:
        if task.status in TERMINAL_TASK_STATES:
            return None
        with self.rt.db.read() as session:
            row = session.execute(select(_STEPS).where(_STEPS.c.workflow_step_id == step_id)).first()
        if row is None:
            return None
        view = TaskView(
            task_id=task.task_id, name=task.name, namespace=task.namespace, version=task.version,
            status=task.status, context=task.context, created_at=task.created_at,
        )  # fmt: skip
        outcome = self.steps.execute_one(task, view, row, token)
        self.rt.schedule(task.task_id, 0.0)  # a pass discovers what became ready and finalizes
        return outcome.status if outcome is not None else None

    def _write_start(self, writer: TransitionWriter, task: TaskInfo) -> tuple[Transition, datetime] | None:
        """Move the pending task to in_progress in the writer's transaction; None (the task re-read) on a race.

        At the writer's time, as the turn's claims: the task has started when its first steps do.
        """
        now = writer.now
        lease = now + timedelta(seconds=self.rt.config.execution.step_lease_seconds)
        values: dict[str, Any] = {"run_at": None, "claim_expires_at": lease}
        if task.started_at is None:
            values["started_at"] = now
        (written,) = writer.apply(
            "task", [Move(task.task_id, PENDING, IN_PROGRESS, {"initialization_completed": True}, values)]
        )
        if written is None:  # another runner started (or finished) it
            (row,) = _TASK_STATE.rows(writer.connection, {"b_id": task.task_id})
            task.status, task.started_at = row.status, row.started_at
            return None
        return written, now

    def _started(self, task: TaskInfo, written: Transition, now: datetime) -> None:
        """After the start is committed: the task's state, metrics, log and ``task.start_requested``."""
        queue_wait = (now - task.run_at).total_seconds() if task.run_at else None
        task.started_at = task.started_at or now
        task.status = IN_PROGRESS
        self.rt.metrics.task_started(*task.labels, max(queue_wait, 0.0) if queue_wait is not None else None)
        logger.info("task %s (%s) started", task.task_id, task.full_name)
        self._publish_task(task, written, "started", None, task_context=task.context)

    def _refresh(self, task: TaskInfo) -> str:
        with self.rt.db.read_connection() as connection:
            (row,) = _TASK_STATE.rows(connection, {"b_id": task.task_id})
        task.status, task.started_at = row.status, row.started_at
        return task.status

    # -- finalization -------------------------------------------------------------------------------

    def finalize(self, task: TaskInfo, processed: int, completion: _Completion | None = None) -> str:
        """Decide the task's state from its execution context (§5.5).

        ``completion`` is a completion the pass's last turn already wrote: only published here.
        """
        for _ in range(_MAX_FINALIZE_ATTEMPTS):
            ctx = completion.context if completion is not None else self._context(task.task_id)
            self.rt.events.emit(
                "workflow.task_finalization_started",
                lambda: {"task_id": task.task_id, "processed_steps_count": processed, **ctx.as_payload()},  # noqa: B023
            )
            status = ctx.execution_status
            if completion is not None:
                self._before(task, completion.transition.from_state, COMPLETE)
                final: str | None = self._completed(task, ctx, completion.transition, completion.at)
                completion = None
            elif status == "all_complete":
                final = self._complete(task, ctx)
            elif status == "blocked_by_failures":
                final = self._fail(task, ctx)
            else:
                final = self._pend(task, ctx)
            if final is not None:
                self.rt.events.emit(
                    "workflow.task_finalization_completed",
                    lambda: {
                        "task_id": task.task_id, "processed_steps_count": processed,
                        "final_status": final, **ctx.as_payload(),  # noqa: B023
                    },
                )  # fmt: skip
                return final
            if self._refresh(task) in TERMINAL_TASK_STATES:
                return task.status
        return self._refresh(task)

    def _move(self, task: TaskInfo, to_state: str, meta: dict[str, Any], values: dict[str, Any]) -> Transition | None:
        """Move the task from its current state (via in_progress when pending); None on a race."""
        self._before(task, task.status, to_state)
        with self.rt.db.connection() as connection:
            return self._move_in(connection, task, to_state, meta, values)

    @staticmethod
    def _move_in(
        connection: Connection, task: TaskInfo, to_state: str, meta: dict[str, Any], values: dict[str, Any]
    ) -> Transition | None:
        """:meth:`_move` in the caller's transaction."""
        now = utcnow()
        found = _TASK_STATE.rows(connection, {"b_id": task.task_id})
        current = found[0].status if found else None
        if current == PENDING and to_state == COMPLETE:
            if apply_transition(connection, "task", task.task_id, PENDING, IN_PROGRESS, {}, now=now) is None:
                return None
            current = IN_PROGRESS
        if current is None or current == to_state or current in TERMINAL_TASK_STATES:
            return None
        return apply_transition(connection, "task", task.task_id, current, to_state, meta, values, now=now)

    def _write_completion(self, writer: TransitionWriter, task: TaskInfo) -> _Completion | None:
        """Complete the task in the writer's transaction if every step is complete; None otherwise."""
        ctx = execution_context(writer.connection, task.task_id)
        if ctx.execution_status != "all_complete":
            return None
        now = writer.now
        values = _completed_values(now)
        (written,) = writer.apply("task", [Move(task.task_id, IN_PROGRESS, COMPLETE, {}, values)])
        if written is None:  # not in progress: from whatever state it is in
            written = self._move_in(writer.connection, task, COMPLETE, {}, values)
        return _Completion(ctx, written, now) if written is not None else None

    def _complete(self, task: TaskInfo, ctx: ExecutionContext) -> str | None:
        now = utcnow()
        written = self._move(task, COMPLETE, {}, _completed_values(now))
        if written is None:
            return None
        return self._completed(task, ctx, written, now)

    def _completed(self, task: TaskInfo, ctx: ExecutionContext, written: Transition, now: datetime) -> str:
        """After the task's completion is committed: metrics, log, ``task.completed``."""
        duration = (now - task.created_at).total_seconds()
        self.rt.metrics.task_finished(*task.labels, COMPLETE, duration)
        logger.info("task %s (%s) complete in %.3fs", task.task_id, task.full_name, duration)
        task.status = COMPLETE
        self._publish_task(task, written, "completed", ctx)
        return COMPLETE

    def _fail(self, task: TaskInfo, ctx: ExecutionContext) -> str | None:
        now = utcnow()
        written = self._move(
            task, ERROR, {"reason": "steps_in_error_state"},
            {"completed_at": now, "run_at": None, **_RELEASE},
        )  # fmt: skip
        if written is None:
            return None
        with self.rt.db.read() as session:
            error_steps = list(
                session.scalars(
                    select(WorkflowStep.name)
                    .where(WorkflowStep.task_id == task.task_id, WorkflowStep.status == ERROR)
                    .order_by(WorkflowStep.workflow_step_id)
                )
            )
        duration = (now - task.created_at).total_seconds()
        self.rt.metrics.task_finished(*task.labels, ERROR, duration)
        logger.info(
            "task %s (%s) error in %.3fs: steps in error %s", task.task_id, task.full_name, duration, error_steps
        )
        task.status = ERROR
        self._publish_task(task, written, "failed", ctx, error_message="steps_in_error_state", error_steps=error_steps)
        return ERROR

    def _pend(self, task: TaskInfo, ctx: ExecutionContext) -> str | None:
        delay, reason = self.reenqueue_delay(ctx)
        now = utcnow()
        run_at = now + timedelta(seconds=delay)
        written = self._move(task, PENDING, {"reason": reason}, {"run_at": run_at, **_RELEASE})
        if written is None:
            return None
        task.status = PENDING
        logger.info("task %s (%s) pending: %s, re-run in %.1fs", task.task_id, task.full_name, reason, delay)
        self._publish_task(task, written, "pending_transition", ctx, reason=reason)
        self.rt.events.emit(
            "workflow.task_reenqueue_delayed" if delay > 0 else "workflow.task_reenqueue_requested",
            lambda: {
                "task_id": task.task_id, "task_name": task.name, "reason": reason,
                **({"delay_seconds": delay, "scheduled_for": run_at.isoformat()} if delay > 0 else {}),
            },
        )  # fmt: skip
        if ctx.execution_status == "processing" and self.rt.dispatch is not None:
            # Steps are out with other workers, and each asks for a pass when it finishes: no message now.
            # ``run_at`` stays persisted, so a sweep or a DB worker still re-runs the task if one never does.
            return PENDING
        self.rt.schedule(task.task_id, delay)
        return PENDING

    def reenqueue_delay(self, ctx: ExecutionContext, now: datetime | None = None) -> tuple[float, str]:
        """Seconds until the task should run again, and why (§5.6; earliest due step wins)."""
        now = now or utcnow()
        backoff = self.rt.config.backoff
        status = ctx.execution_status
        reason = {
            "has_ready_steps": "ready_steps_available",
            "processing": "steps_in_progress",
            "waiting_for_dependencies": "awaiting_dependencies",
        }.get(status, "continuing_workflow")
        delay = backoff.reenqueue_delays.get(status, backoff.default_reenqueue_delay)
        if status == "waiting_for_dependencies" and ctx.next_retry_at is not None:
            until = max((ctx.next_retry_at - now).total_seconds(), 0.0) + backoff.buffer_seconds
            delay, reason = min(until, max(backoff.max_backoff_seconds, 0.0)), "retry_backoff"
        elif status == "processing" and ctx.next_lease_expiry is not None:
            delay = min(delay, max((ctx.next_lease_expiry - now).total_seconds(), 0.0))
        return max(delay, 0.0), reason

    # -- recovery, cancel, manual resolution ---------------------------------------------------------

    def recover_expired_claims(self, task: TaskInfo | None = None, pinned: Connection | None = None) -> int:
        """Return steps (of ``task``, or of every task) whose worker died (lease expired) to a retry-eligible
        ``error`` state; the check for any runs on ``pinned`` (a pass's connection, outside a transaction) when
        given. In the common case, nothing expired, it is the only statement: no write transaction."""
        now = utcnow()
        recovered: list[tuple[WorkflowStep, int, dict[str, Any]]] = []
        params = {"b_now": now} if task is None else {"b_now": now, "b_task": task.task_id}
        check = _EXPIRED_ANY if task is None else _EXPIRED_OF_TASK
        if pinned is not None:
            with untraced():
                expired = check.rows(pinned, params)
        else:
            with self.rt.db.read_connection() as connection:
                expired = check.rows(connection, params)
        if not expired:
            return 0
        with self.rt.db.transaction() as session:
            unreserve = _UNRESERVE if task is None else _UNRESERVE.where(_STEPS.c.task_id == task.task_id)
            session.execute(unreserve, {"b_now": now})
            query = select(WorkflowStep).where(WorkflowStep.in_process.is_(True), WorkflowStep.lease_expires_at < now)
            if task is not None:
                query = query.where(WorkflowStep.task_id == task.task_id)
            for row in session.scalars(query):
                attempts = row.attempts + 1
                message = f"claim by {row.claimed_by} expired at {row.lease_expires_at}: worker presumed dead"
                results = dict(row.results) if isinstance(row.results, dict) else {}
                results.update(error=message, error_class="LeaseExpired", backtrace="")
                # Eligible at once: the handler did not fail, its runner died, and the lease already cost
                # the wait; the attempt still counts against the retry limit, which bounds a crash loop.
                values: dict[str, Any] = {
                    "attempts": attempts, "last_attempted_at": now, "in_process": False,
                    "lease_expires_at": None, "claimed_by": None, "results": results, "next_retry_at": now,
                }  # fmt: skip
                written = apply_transition(
                    session, "step", row.workflow_step_id, IN_PROGRESS, ERROR,
                    {"reason": "lease_expired", "attempt_number": attempts}, values,
                    statement=_RECOVER, params={"b_now": now}, now=now,
                )  # fmt: skip
                if written is not None:
                    recovered.append((row, attempts, results))
        for row, attempts, results in recovered:
            logger.warning("step %s of task %s recovered after its lease expired", row.name, row.task_id)
            try:
                info = task or self.load_task(row.task_id)
            except TemplateNotFoundError:  # a task of templates another worker pool runs: recovered, not announced
                continue
            view = step_view(row, info.parents(row.name))
            view.attempts, view.status, view.results = attempts, ERROR, results
            self.rt.metrics.step_executed(*info.labels, view.name, ERROR, 0.0)
            self.rt.metrics.step_timed_out(*info.labels, view.name)
            self.rt.events.emit(
                "step.failed",
                lambda: step_payload(
                    info, view, "failed",  # noqa: B023
                    execution_duration=0.0, error_message=view.results["error"],  # noqa: B023
                    exception_class="LeaseExpired", backtrace="", retryable=True,
                    from_state=IN_PROGRESS, to_state=ERROR,
                ),
            )  # fmt: skip
        return len(recovered)

    def cancel_task(self, task_id: int) -> str:
        """Cancel the task and its unfinished steps."""
        task = self.load_task(task_id)
        step_transitions: list[tuple[WorkflowStep, Transition]] = []
        with self.rt.db.transaction() as session:
            found = _TASK_STATE.rows(session.connection(), {"b_id": task_id})
            current = found[0].status if found else None
            if current == CANCELLED:
                return CANCELLED
            if current is None or CANCELLED not in TASK_TRANSITIONS[current]:
                raise InvalidStateTransition("task", task_id, str(current), CANCELLED)
            written = apply_transition(
                session, "task", task_id, current, CANCELLED, {"reason": "cancelled"},
                {"run_at": None, "completed_at": utcnow()},
            )  # fmt: skip
            if written is None:
                raise InvalidStateTransition("task", task_id, str(current), CANCELLED)
            rows = session.scalars(
                select(WorkflowStep).where(
                    WorkflowStep.task_id == task_id, WorkflowStep.status.in_((PENDING, IN_PROGRESS))
                )
            ).all()
            for row in rows:
                step_t = apply_transition(
                    session, "step", row.workflow_step_id, row.status, CANCELLED, {"reason": "task cancelled"},
                    {"in_process": False, "lease_expires_at": None, "claimed_by": None},
                )  # fmt: skip
                if step_t is not None:
                    step_transitions.append((row, step_t))
        task.status = CANCELLED
        for row, step_t in step_transitions:
            view = step_view(row, task.parents(row.name))
            self.rt.events.emit(
                "step.cancelled",
                lambda: step_payload(task, view, "cancelled", from_state=step_t.from_state, to_state=CANCELLED),  # noqa: B023
            )
        self._publish_task(task, written, "cancelled", None, reason="cancelled")
        return CANCELLED

    def resolve_step(self, task_id: int, step_name: str) -> str:
        """Mark a pending/errored step resolved manually; an errored task becomes runnable again."""
        task = self.load_task(task_id)
        with self.rt.db.transaction() as session:
            row = session.scalar(
                select(WorkflowStep).where(WorkflowStep.task_id == task_id, WorkflowStep.name == step_name)
            )
            if row is None:
                raise KeyError(f"task {task_id} has no step named {step_name!r}")
            if row.status not in (PENDING, ERROR):
                raise InvalidStateTransition("step", row.workflow_step_id, row.status, RESOLVED_MANUALLY)
            step_t = apply_transition(
                session, "step", row.workflow_step_id, row.status, RESOLVED_MANUALLY,
                {"resolved_by": "manual"}, {"in_process": False, "next_retry_at": None},
            )  # fmt: skip
            task_t = None
            if task.status == ERROR:
                # the failed run's task span was already emitted: the revived run gets its own
                task.trace_context = with_new_task_span(task.trace_context)
                task_t = apply_transition(
                    session, "task", task_id, ERROR, PENDING, {"reason": "step resolved manually"},
                    {"run_at": utcnow(), "completed_at": None, "trace_context": task.trace_context},
                )  # fmt: skip
        view = step_view(row, task.parents(row.name))
        view.status = RESOLVED_MANUALLY
        if step_t is not None:
            self.rt.events.emit(
                "step.resolved_manually",
                lambda: step_payload(task, view, "resolved_manually", from_state=step_t.from_state,
                                     to_state=RESOLVED_MANUALLY, reason="manual"),
            )  # fmt: skip
        if task_t is not None:
            task.status = PENDING
            self._publish_task(task, task_t, "retry", None, reason="step resolved manually")
            self.rt.schedule(task_id, 0.0)
        return task.status

    # -- events ---------------------------------------------------------------------------------------

    def _before(self, task: TaskInfo, from_state: str, to_state: str) -> None:
        self.rt.events.emit(
            "task.before_transition",
            lambda: {
                "task_id": task.task_id, "task_name": task.name, "from_state": from_state, "to_state": to_state,
                "transition_event": event_for_transition("task", from_state, to_state),
            },
        )  # fmt: skip

    def _publish_task(
        self,
        task: TaskInfo,
        transition: Transition,
        event_type: str,
        ctx: ExecutionContext | None,
        **extra: Any,
    ) -> None:
        name = transition.event
        if name is None:
            return
        events = self.rt.events
        if not events.has_subscribers(name):
            return
        counts = ctx or self._context(task.task_id)
        events.publish(
            name,
            task_payload(
                task, transition.to_state, counts, event_type,
                from_state=transition.from_state, to_state=transition.to_state, **extra,
            ),
        )  # fmt: skip
