"""StepExecutor: claim a ready step, run its handler, record the outcome (reference §5.4).

Each attempt is two short transactions around the handler call: the *claim* (``error -> pending``
when retrying, then ``pending -> in_progress`` with ``in_process`` and a lease, conditional on the
step still being ready) and the *outcome* (``in_progress -> complete|error`` with attempts, results
and the next retry time), so no database transaction is held open while user code runs.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import StatementError

from tasker.errors import PermanentError, RetryableError
from tasker.handlers.base import StepHandler
from tasker.models import WorkflowStep
from tasker.models.base import utcnow
from tasker.orchestration.leases import LeaseKeeper
from tasker.orchestration.payloads import iso, step_payload
from tasker.orchestration.readiness import NOW, ready_conditions
from tasker.orchestration.runtime import Runtime, TaskInfo, step_view
from tasker.state.machine import Transition, apply_transition, status_update
from tasker.state.states import COMPLETE, ERROR, IN_PROGRESS, PENDING, event_for_transition
from tasker.telemetry.conventions import error_type
from tasker.telemetry.logs import bind_step
from tasker.views import StepSequence, StepView, TaskView

logger = logging.getLogger(__name__)

BACKTRACE_LINES = 10


_CLAIM = status_update("step").where(*ready_conditions(NOW))
_FINISH = status_update("step").where(WorkflowStep.claimed_by == bindparam("b_token"))
#: Claim of a step an earlier pass marked as dispatched to another worker (see :meth:`StepExecutor.mark_dispatched`).
_CLAIM_DISPATCHED = status_update("step").where(
    WorkflowStep.in_process.is_(True), WorkflowStep.claimed_by == bindparam("b_token")
)
_STEPS = cast(Table, WorkflowStep.__table__)
_MARK_DISPATCHED = (
    update(_STEPS)
    .where(_STEPS.c.workflow_step_id == bindparam("b_id"), *ready_conditions(NOW))
    .values(in_process=True, claimed_by=bindparam("b_token"), lease_expires_at=bindparam("b_lease"))
)


@dataclass(frozen=True)
class StepOutcome:
    """What one attempt did."""

    step: StepView
    status: str  # "complete" | "error" | "lost" (the claim was taken over before we finished)
    blocked: bool = False  # the step can no longer run (retries exhausted or permanent failure)


class _ClaimLost(Exception):
    """Another runner claimed or changed the step first."""


def format_backtrace(exc: BaseException) -> str:
    """The last lines of an exception's traceback."""
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(lines[-BACKTRACE_LINES:])


class StepExecutor:
    """Runs the ready steps of one pass, concurrently on a bounded thread pool."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._pool: ThreadPoolExecutor | None = None
        self.leases = LeaseKeeper(runtime.db, runtime.config.execution.step_lease_seconds)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.rt.config.execution.max_concurrent_steps, thread_name_prefix="tasker-step"
            )
        return self._pool

    def shutdown(self) -> None:
        """Stop the thread pool (waiting for running steps)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.leases.stop()

    def execute(self, task: TaskInfo, task_view: TaskView, ready: list[Any]) -> list[StepOutcome]:
        """Execute ``ready`` steps; returns the outcome of each step actually attempted."""
        events = self.rt.events
        events.emit(
            "workflow.steps_execution_started",
            lambda: {
                "task_id": task.task_id,
                "task_name": task.name,
                "step_count": len(ready),
                "processing_mode": "concurrent",
            },
        )
        if len(ready) == 1:
            results = [contextvars.copy_context().run(self.execute_one, task, task_view, ready[0])]
        else:
            pool = self._executor()
            futures = [
                pool.submit(contextvars.copy_context().run, self.execute_one, task, task_view, row) for row in ready
            ]
            results = [f.result() for f in futures]
        outcomes = [o for o in results if o is not None]
        events.emit(
            "workflow.steps_execution_completed",
            lambda: {
                "task_id": task.task_id,
                "task_name": task.name,
                "processed_count": len(outcomes),
                "successful_count": sum(1 for o in outcomes if o.status == COMPLETE),
            },
        )
        return outcomes

    # -- one step --------------------------------------------------------------------------------

    def mark_dispatched(self, task: TaskInfo, rows: list[Any]) -> list[tuple[int, str]]:
        """Reserve ready steps for other workers (a claim with a lease); returns (step_id, claim token) pairs."""
        now = utcnow()
        lease = now + timedelta(seconds=self.rt.config.execution.step_lease_seconds)
        marked: list[tuple[int, str]] = []
        with self.rt.db.connection() as session:
            for row in rows:
                token = f"dispatch/{secrets.token_hex(6)}"
                params = {"b_id": row.workflow_step_id, "b_now": now, "b_token": token, "b_lease": lease}
                if session.execute(_MARK_DISPATCHED, params).rowcount == 1:
                    marked.append((row.workflow_step_id, token))
        return marked

    def execute_one(
        self, task: TaskInfo, task_view: TaskView, row: Any, dispatched_token: str | None = None
    ) -> StepOutcome | None:
        """Claim and run one step; None when another runner got it first.

        ``dispatched_token`` runs a step reserved by :meth:`mark_dispatched` (only the holder of the token may).
        """
        token = dispatched_token or f"{self.rt.worker_id}/{secrets.token_hex(4)}"
        try:
            claimed = self._claim(task, row, token, dispatched=dispatched_token is not None)
        except _ClaimLost:
            return None
        view, retry = claimed
        bind_step(view.name, view.attempts + 1)  # this attempt's log records name it (own context per step)
        template_step = task.step_template(view.name)
        events = self.rt.events
        if retry is not None:
            self.rt.metrics.step_retried(*task.labels, view.name)
            events.emit(
                "step.retry_requested",
                lambda: step_payload(
                    task, view, "retry",
                    previous_attempts=view.attempts, retry_reason="Step execution failed",
                    from_state=ERROR, to_state=PENDING,
                ),
            )  # fmt: skip
        logger.info("step %s of task %s started (attempt %d)", view.name, task.task_id, view.attempts + 1)
        events.emit(
            "step.execution_requested",
            lambda: step_payload(
                task, view, "started", step_dependencies=list(view.parent_names), step_inputs=view.inputs
            ),
        )
        sequence = StepSequence([view], lambda name: self._load_step(task, name), lambda: self._load_all(task))
        initial = view.results
        events.emit("step.before_handle", lambda: step_payload(task, view, "before_handle"))
        started = time.perf_counter()
        handler: StepHandler | None = None
        self.leases.hold(token)
        try:
            handler = template_step.handler(template_step.handler_config)
            handler.bind_event_sink(self.rt.events.publish)
            output = handler.process(task_view, sequence, view)
            handler.process_results(view, output, initial)
        except Exception as exc:  # any handler failure (construction included) is a step failure
            return self._record_failure(task, view, token, exc, time.perf_counter() - started)
        finally:
            self.leases.release(token)
            if handler is not None:
                handler.bind_event_sink(None)
        return self._record_success(task, view, token, time.perf_counter() - started)

    def _claim(self, task: TaskInfo, row: Any, token: str, dispatched: bool) -> tuple[StepView, Transition | None]:
        now = utcnow()
        statement, params = (_CLAIM_DISPATCHED, {"b_token": token}) if dispatched else (_CLAIM, {"b_now": now})
        retry: Transition | None = None
        if row.status == ERROR:
            self._before(task, row.workflow_step_id, row.name, ERROR, PENDING)
        self._before(task, row.workflow_step_id, row.name, PENDING, IN_PROGRESS)
        try:
            with self.rt.db.connection() as session:
                if row.status == ERROR:
                    retry = apply_transition(
                        session, "step", row.workflow_step_id, ERROR, PENDING,
                        {"retry_attempt": row.attempts + 1}, {"next_retry_at": None},
                        statement=statement, params=params, now=now,
                    )  # fmt: skip
                    if retry is None:
                        raise _ClaimLost
                lease = now + timedelta(seconds=self.rt.config.execution.step_lease_seconds)
                claim = apply_transition(
                    session, "step", row.workflow_step_id, PENDING, IN_PROGRESS,
                    {"attempt_number": row.attempts + 1, "claimed_by": token},
                    {"in_process": True, "lease_expires_at": lease, "claimed_by": token, "started_at": now},
                    statement=statement, params=params, now=now,
                )  # fmt: skip
                if claim is None:
                    raise _ClaimLost
        except _ClaimLost:
            logger.debug("step %s of task %s claimed elsewhere", row.name, task.task_id)
            raise
        view = step_view(row, task.parents(row.name))
        view.status = IN_PROGRESS
        view.started_at = now
        view.in_process = True
        view.next_retry_at = None
        return view, retry

    def _before(self, task: TaskInfo, step_id: int, name: str, from_state: str, to_state: str) -> None:
        self.rt.events.emit(
            "step.before_transition",
            lambda: {
                "task_id": task.task_id, "step_id": step_id, "step_name": name, "from_state": from_state,
                "to_state": to_state, "transition_event": event_for_transition("step", from_state, to_state),
            },
        )  # fmt: skip

    def _finish(
        self, task: TaskInfo, view: StepView, token: str, to_state: str, meta: dict[str, Any], values: dict[str, Any]
    ) -> bool:
        self._before(task, view.step_id, view.name, IN_PROGRESS, to_state)
        with self.rt.db.connection() as session:
            written = apply_transition(
                session, "step", view.step_id, IN_PROGRESS, to_state, meta, values,
                statement=_FINISH, params={"b_token": token},
            )  # fmt: skip
        if written is None:
            logger.warning(
                "step %s (id %s) lost its claim before finishing (lease expired?): outcome discarded",
                view.name, view.step_id,
            )  # fmt: skip
        return written is not None

    def _record_success(self, task: TaskInfo, view: StepView, token: str, duration: float) -> StepOutcome:
        end = utcnow()
        attempts = view.attempts + 1
        values = {
            "attempts": attempts,
            "last_attempted_at": end,
            "processed": True,
            "processed_at": end,
            "in_process": False,
            "lease_expires_at": None,
            "claimed_by": None,
            "results": view.results,
            "backoff_request_seconds": None,
            "next_retry_at": None,
        }
        meta = {"attempt_number": attempts, "execution_duration": round(duration, 6)}
        try:
            finished = self._finish(task, view, token, COMPLETE, meta, values)
        except StatementError as exc:
            if not isinstance(exc.orig, (TypeError, ValueError)):
                raise
            error = TypeError(f"step results are not JSON serialisable: {exc.orig}")
            return self._record_failure(task, view, token, error, duration)
        if not finished:
            return StepOutcome(view, "lost")
        view.attempts, view.status, view.processed, view.processed_at = attempts, COMPLETE, True, end
        view.in_process, view.last_attempted_at = False, end
        self.rt.metrics.step_executed(*task.labels, view.name, COMPLETE, duration)
        if self.rt.otel is not None:
            self.rt.otel.processed(task.destination, duration)
        logger.info("step %s of task %s complete in %.3fs", view.name, task.task_id, duration)
        self.rt.events.emit(
            "step.completed",
            lambda: step_payload(
                task, view, "completed",
                execution_duration=round(duration, 6), step_results=view.results,
                from_state=IN_PROGRESS, to_state=COMPLETE,
            ),
        )  # fmt: skip
        return StepOutcome(view, COMPLETE)

    def _record_failure(
        self, task: TaskInfo, view: StepView, token: str, exc: Exception, duration: float
    ) -> StepOutcome:
        end = utcnow()
        attempts = view.attempts + 1
        permanent = isinstance(exc, PermanentError)
        retryable = view.retryable and not permanent
        exhausted = attempts >= view.retry_limit
        will_retry = retryable and not exhausted
        backoff_cfg = self.rt.config.backoff
        explicit = isinstance(exc, RetryableError) and exc.retry_after is not None
        if explicit:
            assert isinstance(exc, RetryableError) and exc.retry_after is not None
            backoff = backoff_cfg.cap(exc.retry_after)
        else:
            backoff = backoff_cfg.calculate_backoff_seconds(attempts, self.rt.rng)
        next_retry_at: datetime | None = end + timedelta(seconds=backoff) if will_retry else None
        error_message = str(exc) or type(exc).__name__
        backtrace = format_backtrace(exc)
        partial = view.results
        results: dict[str, Any] = dict(partial) if isinstance(partial, dict) else {"partial_results": partial}
        results.update(error=error_message, error_class=type(exc).__name__, backtrace=backtrace)
        error_code = exc.error_code if isinstance(exc, PermanentError) else None
        if error_code:
            results["error_code"] = error_code
        backoff_request = backoff if explicit else None
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempted_at": end,
            "processed": False,
            "in_process": False,
            "lease_expires_at": None,
            "claimed_by": None,
            "results": results,
            "retryable": retryable,
            "backoff_request_seconds": backoff_request,
            "next_retry_at": next_retry_at,
        }
        meta = {
            "attempt_number": attempts,
            "execution_duration": round(duration, 6),
            "error_message": self.rt.events.masker.scrub(error_message)[:1000],
            "error_class": type(exc).__name__,
            "backoff_until": iso(next_retry_at),
        }
        try:
            finished = self._finish(task, view, token, ERROR, meta, values)
        except StatementError:  # the partial results themselves are not serialisable
            values["results"] = {k: v for k, v in results.items() if k in ("error", "error_class", "backtrace")}
            finished = self._finish(task, view, token, ERROR, meta, values)
        if not finished:
            return StepOutcome(view, "lost")
        view.attempts, view.status, view.results, view.retryable = (
            attempts,
            ERROR,
            values["results"],
            retryable,
        )
        view.in_process, view.last_attempted_at, view.next_retry_at = False, end, next_retry_at
        view.backoff_request_seconds = backoff_request
        self.rt.metrics.step_executed(*task.labels, view.name, ERROR, duration)
        if self.rt.otel is not None:
            self.rt.otel.processed(task.destination, duration, error_type(exc))
        logger.error(
            "step %s of task %s failed (attempt %d/%d): %s",
            view.name, task.task_id, attempts, view.retry_limit, error_message, exc_info=exc,
        )  # fmt: skip
        events = self.rt.events
        events.emit(
            "step.failed",
            lambda: step_payload(
                task, view, "failed",
                execution_duration=round(duration, 6), error_message=error_message,
                exception_class=error_type(exc), backtrace=backtrace, retryable=retryable,
                error_code=error_code, next_retry_at=iso(next_retry_at), step_results=view.results,
                from_state=IN_PROGRESS, to_state=ERROR,
            ),
        )  # fmt: skip
        if will_retry:
            events.emit(
                "observability.step.backoff",
                lambda: step_payload(
                    task, view, "backoff",
                    backoff_seconds=backoff,
                    backoff_type="server_requested" if explicit else "exponential",
                    retry_after=exc.retry_after if isinstance(exc, RetryableError) else None,
                ),
            )  # fmt: skip
        elif exhausted and retryable:
            self.rt.metrics.step_retries_exhausted(*task.labels, view.name)
            logger.warning("step %s of task %s exhausted its %d attempts", view.name, task.task_id, attempts)
            events.emit(
                "observability.step.max_retries_reached",
                lambda: step_payload(task, view, "max_retries_reached", error_message=error_message),
            )
        return StepOutcome(view, ERROR, blocked=not will_retry)

    # -- lazy sequence loading ---------------------------------------------------------------------

    def _load_step(self, task: TaskInfo, name: str) -> StepView | None:
        with self.rt.db.read() as session:
            row = session.scalar(
                select(WorkflowStep).where(WorkflowStep.task_id == task.task_id, WorkflowStep.name == name)
            )
            return step_view(row, task.parents(row.name)) if row is not None else None

    def _load_all(self, task: TaskInfo) -> list[StepView]:
        with self.rt.db.read() as session:
            rows = session.scalars(
                select(WorkflowStep).where(WorkflowStep.task_id == task.task_id).order_by(WorkflowStep.workflow_step_id)
            )
            return [step_view(r, task.parents(r.name)) for r in rows]
