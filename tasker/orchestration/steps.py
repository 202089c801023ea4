"""StepExecutor: claim a ready step, run its handler, record the outcome (reference §5.4).

Each attempt is two short transactions around the handler call: the *claim* (``error -> pending``
when retrying, then ``pending -> in_progress`` with ``in_process`` and a lease, conditional on the
step still being ready) and the *outcome* (``in_progress -> complete|error`` with attempts, results
and the next retry time), so no database transaction is held open while user code runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import secrets
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from tasker.encoding import check_json, safe_text
from tasker.errors import EncodingError, PermanentError, RetryableError, StepError, StepTimeoutError
from tasker.handlers.base import EventSink
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
from tasker.templates import StepTemplate
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


#: Failures a handler means (or the engine decides): logged as one line, without a traceback.
_EXPECTED_FAILURES = (StepError, EncodingError, asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)


def invoke_handler(
    template_step: StepTemplate, task: TaskView, sequence: StepSequence, step: StepView, sink: EventSink
) -> None:
    """Run one step's handler: build it, call ``process()``, store its output on ``step.results``.

    The one place the engine calls step code. The results must encode as JSON (:func:`check_json`); a value
    that does not fails the step with an :class:`EncodingError` naming the step and the key path. Custom
    events the handler publishes go to ``sink``, their payloads checked the same way.
    """

    def publish(name: str, payload: Mapping[str, Any]) -> None:
        check_json(dict(payload), f"{name} payload")
        sink(name, payload)

    handler = template_step.handler(template_step.handler_config)
    handler.bind_event_sink(publish)
    try:
        initial = step.results
        output = handler.process(task, sequence, step)
        handler.process_results(step, output, initial)
    finally:
        handler.bind_event_sink(None)
    try:
        check_json(step.results, "results")
    except EncodingError as exc:
        raise EncodingError(f"step {step.name}: {exc}", path=exc.path) from None


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
        #: Unexpected exception classes whose traceback was logged already (once each).
        self._traced: set[str] = set()

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
        From the claim to the recorded outcome the claim's lease is renewed, whatever subscribers and the
        handler do meanwhile. A ``KeyboardInterrupt``/``SystemExit`` (from the handler or a subscriber) is
        recorded as a failed attempt, releasing the step at once, and then re-raised.
        """
        token = dispatched_token or f"{self.rt.worker_id}/{secrets.token_hex(4)}"
        try:
            view, retry = self._claim(task, row, token, dispatched=dispatched_token is not None)
        except _ClaimLost:
            return None
        bind_step(view.name, view.attempts + 1)  # this attempt's log records name it (own context per step)
        self.leases.hold(token)
        started = time.perf_counter()
        try:
            self._announce(task, view, retry)
            error = self._run_handler(task, task_view, view)
        except BaseException as exc:  # an interruption: record the attempt, release the claim, re-raise
            self.leases.release(token)
            self._record_failure(task, view, token, exc, time.perf_counter() - started)
            raise
        self.leases.release(token)
        duration = time.perf_counter() - started
        if error is not None:
            return self._record_failure(task, view, token, error, duration)
        return self._record_success(task, view, token, duration)

    def _announce(self, task: TaskInfo, view: StepView, retry: Transition | None) -> None:
        """Publish what happens before the handler runs (retry, execution requested, before handle)."""
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
        events.emit("step.before_handle", lambda: step_payload(task, view, "before_handle"))

    def _run_handler(self, task: TaskInfo, task_view: TaskView, view: StepView) -> BaseException | None:
        """Run the step's handler (within its timeout, if any); the failure it ended with, or None.

        ``KeyboardInterrupt``/``SystemExit`` propagate. With a timeout the handler runs in a thread of its own
        on a copy of the step, so that at the deadline the step can be failed and its slot freed while the
        abandoned run goes on; whatever that run returns later is discarded.
        """
        template_step = task.step_template(view.name)
        sequence = StepSequence([view], lambda name: self._load_step(task, name), lambda: self._load_all(task))
        timeout = template_step.timeout_seconds or self.rt.config.execution.step_timeout_seconds
        if timeout is None:
            try:
                invoke_handler(template_step, task_view, sequence, view, self.rt.events.publish)
            except (Exception, asyncio.CancelledError, GeneratorExit) as exc:
                return exc
            return None
        view.deadline = utcnow() + timedelta(seconds=timeout)
        attempt = dataclasses.replace(view)
        outcome: list[BaseException | None] = []
        lock = threading.Lock()

        def run() -> None:
            try:
                invoke_handler(template_step, task_view, sequence, attempt, self.rt.events.publish)
                error: BaseException | None = None
            except BaseException as exc:  # handed to the engine's thread, or discarded when late
                error = exc
            with lock:
                outcome.append(error)
                late = len(outcome) > 1
            if late:
                logger.warning(
                    "step %s of task %s: run abandoned after its timeout ended (%s): result discarded",
                    view.name, task.task_id, "failed" if error else "succeeded",
                )  # fmt: skip

        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(run,), name=f"tasker-step-{view.step_id}", daemon=True
        )
        thread.start()
        thread.join(timeout)
        with lock:
            if not outcome:
                outcome.extend((None, None))  # marks the run abandoned: its own append comes late
                timed_out = True
            else:
                timed_out = False
        if timed_out:
            self.rt.metrics.step_timed_out(*task.labels, view.name)
            return StepTimeoutError(view.name, timeout)
        error = outcome[0]
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise error
        view.results = attempt.results
        return error

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
        finished = self._finish(task, view, token, COMPLETE, meta, values)
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
        self, task: TaskInfo, view: StepView, token: str, exc: BaseException, duration: float
    ) -> StepOutcome:
        end = utcnow()
        attempts = view.attempts + 1
        permanent = isinstance(exc, (PermanentError, EncodingError))
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
        error_message = safe_text(str(exc) or type(exc).__name__)
        backtrace = safe_text(format_backtrace(exc))
        partial = view.results
        results: dict[str, Any] = dict(partial) if isinstance(partial, dict) else {"partial_results": partial}
        try:
            check_json(results, "results")
        except EncodingError:  # the partial results cannot be stored: keep only the error
            results = {}
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
        self._log_failure(task, view, exc, error_message, next_retry_at)
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

    def _log_failure(
        self, task: TaskInfo, view: StepView, exc: BaseException, message: str, next_retry_at: datetime | None
    ) -> None:
        """One WARNING line per failed attempt; the traceback of an unexpected exception class once, at ERROR."""
        line = "step %s of task %s failed (attempt %d/%d): %s: %s%s"
        args = (
            view.name, task.task_id, view.attempts, view.retry_limit, type(exc).__name__, message,
            f"; retry at {iso(next_retry_at)}" if next_retry_at is not None else "",
        )  # fmt: skip
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if isinstance(exc, _EXPECTED_FAILURES) or kind in self._traced:
            logger.warning(line, *args)
            logger.debug("traceback of the failure of step %s of task %s", view.name, task.task_id, exc_info=exc)
        else:
            self._traced.add(kind)
            logger.error(line, *args, exc_info=exc)

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
