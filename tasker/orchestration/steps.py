"""StepExecutor: claim ready steps, run their handlers, record their outcomes (reference §5.4).

The writes of an attempt happen in the pass's transactions (see ``Coordinator._iterate``), never in a step
thread: :meth:`StepExecutor.claim` (``error -> pending`` when retrying, then ``pending -> in_progress`` with
``in_process``, a lease and a claim token, conditional on the step still being ready) and
:meth:`StepExecutor.write` (``in_progress -> complete|error`` with attempts, results and the next retry time,
conditional on the claim token). Step threads only run :meth:`StepExecutor.run`: the announcing events and the
handler. So no transaction is held open while user code runs, and what is written when a step finishes is
:meth:`StepExecutor.outcome`.
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
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from tasker.db.prepared import Prepared
from tasker.encoding import check_json, safe_text
from tasker.errors import EncodingError, PermanentError, RetryableError, StepError, StepTimeoutError
from tasker.handlers.aio import EventLoop
from tasker.handlers.base import EventSink, StepHandler
from tasker.handlers.events import HandlerEventSink
from tasker.models import WorkflowStep
from tasker.models.base import utcnow
from tasker.orchestration.leases import LeaseKeeper
from tasker.orchestration.payloads import iso, step_payload
from tasker.orchestration.readiness import NOW, ready_conditions
from tasker.orchestration.runtime import Runtime, TaskInfo, step_view
from tasker.state.machine import Move, Transition, TransitionWriter, status_update
from tasker.state.states import COMPLETE, ERROR, IN_PROGRESS, PENDING, event_for_transition
from tasker.telemetry.conventions import error_type
from tasker.telemetry.logs import bind_step
from tasker.templates import StepTemplate
from tasker.views import StepSequence, StepView, TaskView

logger = logging.getLogger(__name__)

BACKTRACE_LINES = 10


_CLAIM = status_update("step").where(*ready_conditions(NOW))
_FINISH = status_update("step").where(WorkflowStep.claimed_by == bindparam("b_token"))
#: Claim of a step an earlier pass reserved for another worker (see :meth:`StepExecutor.reserve`).
_CLAIM_DISPATCHED = status_update("step").where(
    WorkflowStep.in_process.is_(True), WorkflowStep.claimed_by == bindparam("b_token")
)
_STEPS = cast(Table, WorkflowStep.__table__)
_MARK_DISPATCHED = Prepared(
    update(_STEPS)
    .where(_STEPS.c.workflow_step_id == bindparam("b_id"), *ready_conditions(NOW))
    .values(
        in_process=True, claimed_by=bindparam("b_token"), lease_expires_at=bindparam("b_lease"),
        updated_at=bindparam("b_now"),
    )
)  # fmt: skip


@dataclass(frozen=True)
class StepOutcome:
    """What one attempt did."""

    step: StepView
    status: str  # "complete" | "error" | "lost" (the claim was taken over before we finished)
    blocked: bool = False  # the step can no longer run (retries exhausted or permanent failure)


@dataclass(frozen=True)
class Claim:
    """A step claimed by this process: its snapshot, claim token and the retry transition, if it was one."""

    view: StepView
    token: str
    retry: Transition | None


@dataclass(frozen=True)
class Attempt:
    """A finished handler run, handed back by a step thread; ``interrupted`` errors are re-raised once recorded."""

    claim: Claim
    error: BaseException | None
    duration: float
    interrupted: bool = False
    #: The step thread's context at the end of the run (its span attached): the outcome is published in it.
    context: contextvars.Context | None = None


@dataclass
class _Failure:
    """How a failed attempt is published."""

    exc: BaseException
    message: str
    backtrace: str
    retryable: bool
    will_retry: bool
    exhausted: bool
    explicit: bool
    backoff: float
    error_code: str | None


@dataclass
class Outcome:
    """The write of one attempt's outcome (``in_progress -> status``) and what to publish once it is committed."""

    attempt: Attempt
    status: str
    values: dict[str, Any]
    meta: dict[str, Any]
    end: datetime
    failure: _Failure | None = None
    written: bool = False

    @property
    def blocked(self) -> bool:
        """The step can no longer run (retries exhausted or permanent failure)."""
        return self.written and self.failure is not None and not self.failure.will_retry


#: Failures a handler means (or the engine decides): logged as one line, without a traceback.
_EXPECTED_FAILURES = (StepError, EncodingError, asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)


def invoke_handler(
    handler_class: type[StepHandler],
    template_step: StepTemplate,
    task: TaskView,
    sequence: StepSequence,
    step: StepView,
    sink: EventSink,
    loop: EventLoop | None = None,
    timeout: float | None = None,
) -> None:
    """Run one step's handler: build it, ``handle()`` the step, store its output on ``step.results``.

    The one place the engine calls step code. The results must encode as JSON (:func:`check_json`); a value
    that does not fails the step with an :class:`EncodingError` naming the step and the key path. Custom
    events the handler publishes go to ``sink``, their payloads checked the same way. An ``async def
    process`` runs on ``loop``, cancelled after ``timeout`` seconds.
    """

    def publish(name: str, payload: Mapping[str, Any]) -> None:
        check_json(dict(payload), f"{name} payload")
        sink(name, payload)

    handler = handler_class(template_step.handler_config)
    handler.bind_event_sink(publish)
    handler.bind_loop(loop, timeout)
    try:
        handler.handle(task, sequence, step)
    finally:
        handler.bind_event_sink(None)
    try:
        check_json(step.results, "results")
    except EncodingError as exc:
        raise EncodingError(f"step {step.name}: {exc}", path=exc.path) from None


def format_backtrace(exc: BaseException) -> str:
    """The last lines of an exception's traceback."""
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(lines[-BACKTRACE_LINES:])


class StepExecutor:
    """Claims steps, runs their handlers on a bounded thread pool, and writes and publishes their outcomes."""

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
        self.rt.aio.close()

    # -- the pass's writes (in the caller's transaction) -------------------------------------------

    def claim(
        self, writer: TransitionWriter, task: TaskInfo, rows: Sequence[Any], token: str | None = None
    ) -> list[Claim]:
        """Claim ``rows`` (ready steps) in the writer's transaction; the claims won.

        With ``token`` the rows are steps :meth:`reserve` set aside for that token (a dispatched step).
        """
        if not rows:
            return []
        now = writer.now
        lease = now + timedelta(seconds=self.rt.config.execution.step_lease_seconds)
        statement, params = (_CLAIM_DISPATCHED, {"b_token": token}) if token else (_CLAIM, {"b_now": now})
        retrying = [row for row in rows if row.status == ERROR]
        retries = writer.apply(
            "step",
            [
                Move(row.workflow_step_id, ERROR, PENDING, {"retry_attempt": row.attempts + 1},
                     {"next_retry_at": None}, params)
                for row in retrying
            ],
            statement,
        )  # fmt: skip
        retried = {t.entity_id: t for t in retries if t is not None}
        # after a retry transition the same guards hold, so its claim cannot fail where the retry succeeded
        candidates = [row for row in rows if row.status != ERROR or row.workflow_step_id in retried]
        tokens = [token or f"{self.rt.worker_id}/{secrets.token_hex(4)}" for _ in candidates]
        moves = [
            Move(
                row.workflow_step_id,
                PENDING,
                IN_PROGRESS,
                {"attempt_number": row.attempts + 1, "claimed_by": claim_token},
                {"in_process": True, "lease_expires_at": lease, "claimed_by": claim_token, "started_at": now},
                params,
            )
            for row, claim_token in zip(candidates, tokens, strict=True)
        ]
        claims: list[Claim] = []
        written = writer.apply("step", moves, statement)
        for row, claim_token, claimed in zip(candidates, tokens, written, strict=True):
            if claimed is None:
                continue
            view = step_view(row, task.parents(row.name))
            view.status, view.started_at, view.in_process, view.next_retry_at = IN_PROGRESS, now, True, None
            claims.append(Claim(view, claim_token, retried.get(row.workflow_step_id)))
        if len(claims) < len(rows):
            logger.debug("%d step(s) of task %s claimed elsewhere", len(rows) - len(claims), task.task_id)
        return claims

    def reserve(self, connection: Connection, rows: Sequence[Any]) -> list[tuple[int, str]]:
        """Reserve ready steps for other workers (a claim with a lease); returns (step_id, claim token) pairs."""
        now = utcnow()
        lease = now + timedelta(seconds=self.rt.config.execution.step_lease_seconds)
        marked: list[tuple[int, str]] = []
        for row in rows:
            token = f"dispatch/{secrets.token_hex(6)}"
            params = {"b_id": row.workflow_step_id, "b_now": now, "b_token": token, "b_lease": lease}
            if _MARK_DISPATCHED.execute(connection, params) == 1:
                marked.append((row.workflow_step_id, token))
        return marked

    def write(self, writer: TransitionWriter, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes in the writer's transaction, each only if its claim still holds (sets ``written``)."""
        moves = [
            Move(
                o.attempt.claim.view.step_id,
                IN_PROGRESS,
                o.status,
                o.meta,
                o.values,
                {"b_token": o.attempt.claim.token},
            )
            for o in outcomes
        ]
        for outcome, written in zip(outcomes, writer.apply("step", moves, _FINISH), strict=True):
            outcome.written = written is not None

    # -- the step threads -------------------------------------------------------------------------------

    def hold(self, claims: Sequence[Claim]) -> None:
        """Keep the claims' leases renewed until their outcomes are published."""
        for claim in claims:
            self.leases.hold(claim.token)

    def submit(self, task: TaskInfo, task_view: TaskView, claim: Claim) -> Future[Attempt]:
        """Run a claimed step on the thread pool."""
        return self._executor().submit(contextvars.copy_context().run, self.run, task, task_view, claim, True)

    def run(self, task: TaskInfo, task_view: TaskView, claim: Claim, pooled: bool = False) -> Attempt:
        """Announce a claimed step and run its handler; the attempt (never raises, writes nothing).

        A ``KeyboardInterrupt``/``SystemExit`` (from the handler or a subscriber) comes back as an interrupted
        attempt: the pass records it as a failed attempt, releasing the step at once, and then re-raises it.
        Every attempt runs in a context of its own, so its log fields and attached span stay with it.
        """
        if not pooled:
            return contextvars.copy_context().run(self.run, task, task_view, claim, True)
        bind_step(claim.view.name, claim.view.attempts + 1)  # this attempt's log records name it
        started = time.perf_counter()
        try:
            self._announce(task, claim)
            error = self._run_handler(task, task_view, claim.view)
        except BaseException as exc:  # an interruption
            error, interrupted = exc, True
        else:
            interrupted = False
        context = contextvars.copy_context() if pooled else None
        return Attempt(claim, error, time.perf_counter() - started, interrupted, context)

    def execute_one(self, task: TaskInfo, task_view: TaskView, row: Any, token: str) -> StepOutcome | None:
        """Claim and run one step reserved for ``token`` by :meth:`reserve`; None when it is not ours any more."""
        with self.rt.db.connection() as connection:
            writer = TransitionWriter(connection)
            claims = self.claim(writer, task, [row], token)
            writer.flush()
        if not claims:
            return None
        self.hold(claims)
        attempt = self.run(task, task_view, claims[0])
        outcome = self.outcome(task, attempt)
        with self.rt.db.connection() as connection:
            writer = TransitionWriter(connection)
            self.write(writer, [outcome])
            writer.flush()
        published = self.publish(task, outcome)
        if attempt.interrupted:
            assert attempt.error is not None
            raise attempt.error
        return published

    def _announce(self, task: TaskInfo, claim: Claim) -> None:
        """Publish what happened before the handler runs (claim, retry, execution requested, before handle)."""
        events, view = self.rt.events, claim.view
        if claim.retry is not None:
            self._before(task, view, ERROR, PENDING)
        self._before(task, view, PENDING, IN_PROGRESS)
        if claim.retry is not None:
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

        ``KeyboardInterrupt``/``SystemExit`` propagate. With a timeout a synchronous handler runs in a thread of
        its own on a copy of the step, so that at the deadline the step can be failed and its slot freed while
        the abandoned run goes on; whatever that run returns later is discarded. An async handler runs on the
        app's event loop instead, where the timeout cancels it.
        """
        template_step = task.step_template(view.name)
        sequence = StepSequence([view], lambda name: self._load_step(task, name), lambda: self._load_all(task))
        timeout = template_step.timeout_seconds or self.rt.config.execution.step_timeout_seconds
        try:
            handler_class = self.rt.templates.step_handler(task.template, template_step)
        except Exception as exc:  # a Ruby handler name that cannot be resolved fails the attempt
            return exc
        sink = HandlerEventSink(self.rt.events, self.rt.metrics, task.namespace, handler_class.__qualname__)
        if timeout is not None:
            view.deadline = utcnow() + timedelta(seconds=timeout)
        if timeout is None or handler_class.is_async():  # an async handler's timeout cancels it on the loop
            try:
                invoke_handler(handler_class, template_step, task_view, sequence, view, sink, self.rt.aio, timeout)
            except (Exception, asyncio.CancelledError, GeneratorExit) as exc:
                if isinstance(exc, StepTimeoutError):
                    self.rt.metrics.step_timed_out(*task.labels, view.name)
                return exc
            return None
        attempt = dataclasses.replace(view)
        outcome: list[BaseException | None] = []
        lock = threading.Lock()

        def run() -> None:
            try:
                invoke_handler(handler_class, template_step, task_view, sequence, attempt, sink)
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

    def _before(self, task: TaskInfo, view: StepView, from_state: str, to_state: str) -> None:
        self.rt.events.emit(
            "step.before_transition",
            lambda: {
                "task_id": task.task_id, "step_id": view.step_id, "step_name": view.name, "from_state": from_state,
                "to_state": to_state, "transition_event": event_for_transition("step", from_state, to_state),
            },
        )  # fmt: skip

    # -- outcomes -----------------------------------------------------------------------------------

    def outcome(self, task: TaskInfo, attempt: Attempt) -> Outcome:
        """What is written when a step finishes: the columns and transition metadata of its attempt."""
        view, end, attempts = attempt.claim.view, utcnow(), attempt.claim.view.attempts + 1
        duration = attempt.duration
        if attempt.error is None:
            self._before(task, view, IN_PROGRESS, COMPLETE)
            values: dict[str, Any] = {
                "attempts": attempts, "last_attempted_at": end, "processed": True, "processed_at": end,
                "in_process": False, "lease_expires_at": None, "claimed_by": None, "results": view.results,
                "backoff_request_seconds": None, "next_retry_at": None,
            }  # fmt: skip
            meta: dict[str, Any] = {"attempt_number": attempts, "execution_duration": round(duration, 6)}
            return Outcome(attempt, COMPLETE, values, meta, end)
        exc = attempt.error
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
        self._before(task, view, IN_PROGRESS, ERROR)
        values = {
            "attempts": attempts, "last_attempted_at": end, "processed": False, "in_process": False,
            "lease_expires_at": None, "claimed_by": None, "results": results, "retryable": retryable,
            "backoff_request_seconds": backoff if explicit else None, "next_retry_at": next_retry_at,
        }  # fmt: skip
        meta = {
            "attempt_number": attempts, "execution_duration": round(duration, 6),
            "error_message": self.rt.events.masker.scrub(error_message)[:1000], "error_class": type(exc).__name__,
            "backoff_until": iso(next_retry_at),
        }  # fmt: skip
        failure = _Failure(
            exc, error_message, backtrace, retryable, will_retry, exhausted, explicit, backoff, error_code
        )
        return Outcome(attempt, ERROR, values, meta, end, failure)

    def publish(self, task: TaskInfo, outcome: Outcome) -> StepOutcome:
        """After the outcome's transaction: release its lease; update the snapshot; metrics, log, events.

        This runs in the context the step ran in, so log records and spans see the step's span as current.
        """
        context = outcome.attempt.context
        return context.run(self._publish, task, outcome) if context is not None else self._publish(task, outcome)

    def _publish(self, task: TaskInfo, outcome: Outcome) -> StepOutcome:
        attempt = outcome.attempt
        view, values, duration = attempt.claim.view, outcome.values, attempt.duration
        self.leases.release(attempt.claim.token)
        if not outcome.written:
            logger.warning(
                "step %s (id %s) lost its claim before finishing (lease expired?): outcome discarded",
                view.name, view.step_id,
            )  # fmt: skip
            return StepOutcome(view, "lost")
        view.attempts, view.status, view.results = values["attempts"], outcome.status, values["results"]
        view.in_process, view.last_attempted_at, view.next_retry_at = False, outcome.end, values["next_retry_at"]
        failure = outcome.failure
        if failure is None:
            view.processed, view.processed_at = True, outcome.end
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
        self._publish_failure(task, view, failure, duration)
        return StepOutcome(view, ERROR, blocked=not failure.will_retry)

    def _publish_failure(self, task: TaskInfo, view: StepView, failure: _Failure, duration: float) -> None:
        exc, events = failure.exc, self.rt.events
        view.retryable, view.backoff_request_seconds = failure.retryable, failure.backoff if failure.explicit else None
        self.rt.metrics.step_executed(*task.labels, view.name, ERROR, duration)
        if self.rt.otel is not None:
            self.rt.otel.processed(task.destination, duration, error_type(exc))
        self._log_failure(task, view, exc, failure.message, view.next_retry_at)
        events.emit(
            "step.failed",
            lambda: step_payload(
                task, view, "failed",
                execution_duration=round(duration, 6), error_message=failure.message,
                exception_class=error_type(exc), backtrace=failure.backtrace, retryable=failure.retryable,
                error_code=failure.error_code, next_retry_at=iso(view.next_retry_at), step_results=view.results,
                from_state=IN_PROGRESS, to_state=ERROR,
            ),
        )  # fmt: skip
        if failure.will_retry:
            events.emit(
                "observability.step.backoff",
                lambda: step_payload(
                    task, view, "backoff",
                    backoff_seconds=failure.backoff,
                    backoff_type="server_requested" if failure.explicit else "exponential",
                    retry_after=exc.retry_after if isinstance(exc, RetryableError) else None,
                ),
            )  # fmt: skip
        elif failure.exhausted and failure.retryable:
            self.rt.metrics.step_retries_exhausted(*task.labels, view.name)
            logger.warning("step %s of task %s exhausted its %d attempts", view.name, task.task_id, view.attempts)
            events.emit(
                "observability.step.max_retries_reached",
                lambda: step_payload(task, view, "max_retries_reached", error_message=failure.message),
            )

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
