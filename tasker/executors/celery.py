"""The Celery executor: passes (and, optionally, single steps) of tasks run as Celery messages.

Producers send ``tasker.run_task(task_id)`` with a countdown equal to the re-run delay; workers started
with ``celery -A mypkg.tasks:celery_app worker`` run the pass. With ``dispatch_steps`` a pass that finds
several ready steps reserves them and sends one ``tasker.run_step(task_id, step_id, token)`` each, so the
steps of one task spread over every worker process.

The database stays the source of truth: a task's due time is persisted (``run_at``) and steps are claimed
with leases, so a duplicated message is harmless and a lost one is re-sent by the sweep
(:func:`sweep_lost_tasks`, run by one thread per worker) once the task is overdue by a grace period.

Prefork safety: the per-process :class:`~tasker.Tasker` (and whatever tracer/meter providers its factory
sets up) is built in ``worker_process_init``, never in the parent, and flushed and shut down in
``worker_process_shutdown`` so spans of recycled children are exported.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import random
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from sqlalchemy import Table, and_, or_, select, update

from tasker.config import CeleryConfig
from tasker.errors import ConfigurationError, StoreError, TaskerError, TaskNotFoundError
from tasker.metrics.database import Heartbeat
from tasker.models import Task
from tasker.models.base import utcnow
from tasker.state.states import IN_PROGRESS, PENDING
from tasker.telemetry.propagation import extract_span_context, traceparent

try:
    from celery import Celery, signals
    from kombu.exceptions import OperationalError as KombuOperationalError
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError("the Celery executor needs Celery: pip install 'tasker-engine[celery]'") from exc

if TYPE_CHECKING:
    from tasker.app import Tasker

logger = logging.getLogger(__name__)

#: Celery task names (stable: producers and workers of different versions must agree).
RUN_TASK = "tasker.run_task"
RUN_STEP = "tasker.run_step"
SWEEP = "tasker.sweep"

#: ``claimed_by`` of a task the sweep re-sent: no second re-send until the claim expires.
SWEEP_CLAIM = "tasker-sweep"

AppFactory = Callable[[], "Tasker"]

_TASKS = cast(Table, Task.__table__)
_TRACE_CACHE_SIZE = 4096
# A broker that is down must not stall the engine: the task's state is persisted, the sweep re-sends it.
_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1.0}


class CeleryExecutor:
    """Sends passes of tasks (and, with ``dispatch_steps``, single steps) as Celery messages.

    Call :meth:`bind` with the app using the executor so messages carry the task span's W3C trace context
    (``create_celery_app`` does it for you).
    """

    name = "celery"

    def __init__(self, celery_app: Celery, *, queue: str = "tasker", dispatch_steps: bool = False) -> None:
        self.celery_app = celery_app
        self.queue = queue
        self.dispatch_steps = dispatch_steps
        if dispatch_steps:
            # The engine dispatches ready steps only when the executor has this attribute.
            self.dispatch_step: Callable[[int, int, str], None] = self._dispatch_step
        self._app: Tasker | None = None
        self._carriers: OrderedDict[int, dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def bind(self, app: Tasker) -> None:
        """Read trace contexts of tasks from ``app``'s database (once per task and process)."""
        self._app = app

    def enqueue(self, task_id: int, delay: float = 0.0, *, carrier: Mapping[str, str] | None = None) -> None:
        """Send ``tasker.run_task(task_id)`` due in ``delay`` seconds; ``carrier`` saves a trace-context lookup."""
        if carrier is not None:
            self._remember(task_id, dict(carrier))
        self._send(RUN_TASK, (task_id,), task_id, delay)

    def _dispatch_step(self, task_id: int, step_id: int, token: str) -> None:
        """Send ``tasker.run_step`` for a step a pass reserved with ``token``."""
        self._send(RUN_STEP, (task_id, step_id, token), task_id, 0.0)

    def shutdown(self) -> None:
        """Forget cached trace contexts (the Celery app and its connections belong to the caller)."""
        with self._lock:
            self._carriers.clear()

    # -- publishing ---------------------------------------------------------------------------------

    def _send(self, name: str, args: tuple[Any, ...], task_id: int, delay: float) -> None:
        carrier = self.carrier(task_id)
        options: dict[str, Any] = {
            "queue": self.queue,
            "headers": dict(carrier),
            "retry": True,
            "retry_policy": _PUBLISH_RETRY_POLICY,
        }
        if delay > 0:
            options["countdown"] = delay
        try:
            with _current_trace(carrier):
                task = self.celery_app.tasks.get(name)
                if task is not None:
                    task.apply_async(args, **options)
                else:  # a producer-only Celery app without our tasks registered
                    self.celery_app.send_task(name, args, **options)
        except (KombuOperationalError, OSError) as exc:
            logger.warning(
                "could not send %s for task %s (%s); the sweep re-sends it once it is overdue", name, task_id, exc
            )

    def carrier(self, task_id: int) -> dict[str, str]:
        """The W3C carrier of the task's span (empty when unknown); looked up once per task."""
        with self._lock:
            cached = self._carriers.get(task_id)
            if cached is not None:
                self._carriers.move_to_end(task_id)
                return cached
        app = self._app
        if app is None:
            return {}
        try:
            with app.db.read() as session:
                stored = session.scalar(select(_TASKS.c.trace_context).where(_TASKS.c.task_id == task_id))
        except StoreError:
            logger.debug("no trace context for task %s: database unavailable", task_id, exc_info=True)
            return {}
        return self._remember(task_id, carrier_of(stored, app.config.telemetry.propagation))

    def _remember(self, task_id: int, carrier: dict[str, str]) -> dict[str, str]:
        with self._lock:
            self._carriers[task_id] = carrier
            self._carriers.move_to_end(task_id)
            while len(self._carriers) > _TRACE_CACHE_SIZE:
                self._carriers.popitem(last=False)
        return carrier


def carrier_of(trace_context: Mapping[str, Any] | None, propagation: str = "parent") -> dict[str, str]:
    """The W3C carrier pointing at the task span of a stored trace context ({} when missing or malformed).

    In ``link`` propagation the task span lives in a trace of its own, derived from the stored ids.
    """
    if not trace_context:
        return {}
    try:
        if propagation == "link":
            from tasker.telemetry.propagation import execution_trace_id

            trace_context = {**trace_context, "trace_id": f"{execution_trace_id(trace_context, 'link'):032x}"}
        return traceparent(trace_context)
    except (KeyError, TypeError, ValueError):
        logger.debug("malformed stored trace context %r", trace_context)
        return {}


@contextmanager
def _current_trace(carrier: Mapping[str, str]) -> Iterator[None]:
    """Make the task span current while publishing.

    opentelemetry-instrumentation-celery, when enabled, then starts its publish span as a child of the task
    span and overwrites ``traceparent`` with it: same trace, nothing to reconcile.
    """
    span_context = extract_span_context(carrier) if carrier else None
    if span_context is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    try:
        yield
    finally:
        otel_context.detach(token)


# -- the sweep --------------------------------------------------------------------------------------


class Resender(Protocol):
    """What the sweep sends through: an executor whose ``enqueue`` takes a known carrier."""

    def enqueue(self, task_id: int, delay: float = 0.0, *, carrier: Mapping[str, str] | None = None) -> None:
        """Send a pass of ``task_id``."""
        ...


def sweep_lost_tasks(app: Tasker, executor: Resender, *, grace_seconds: float, limit: int = 500) -> list[int]:
    """Re-send the tasks whose message may have been lost; returns their ids.

    A task is swept when it is pending and overdue by ``grace_seconds`` with no live claim, or in progress
    with an expired claim (its worker died). It is marked claimed by the sweep for ``grace_seconds`` so
    concurrent sweepers (one per worker) send it once.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_seconds)
    unclaimed = or_(_TASKS.c.claim_expires_at.is_(None), _TASKS.c.claim_expires_at < now)
    stale = or_(
        and_(_TASKS.c.status == PENDING, _TASKS.c.run_at <= cutoff, unclaimed),
        and_(_TASKS.c.status == IN_PROGRESS, unclaimed),
    )
    with app.db.transaction() as session:
        ids = list(
            session.scalars(
                select(_TASKS.c.task_id)
                .where(stale)
                .order_by(_TASKS.c.task_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        rows = session.execute(
            update(_TASKS)
            .where(_TASKS.c.task_id.in_(ids), stale)
            .values(claimed_by=SWEEP_CLAIM, claim_expires_at=now + timedelta(seconds=grace_seconds))
            .returning(_TASKS.c.task_id, _TASKS.c.trace_context)
        ).all()
    swept = sorted(int(row.task_id) for row in rows)
    propagation = app.config.telemetry.propagation
    if swept:
        logger.warning("sweep: re-sending %d overdue task(s) whose message may be lost: %s", len(swept), swept)
    for row in rows:
        executor.enqueue(int(row.task_id), 0.0, carrier=carrier_of(row.trace_context, propagation))
    return swept


class _Sweeper(threading.Thread):
    """Runs :func:`sweep_lost_tasks` every ``interval`` seconds until stopped."""

    def __init__(self, app: Tasker, executor: CeleryExecutor, interval: float, grace: float) -> None:
        super().__init__(name="tasker-sweep", daemon=True)
        self.app = app
        self.executor = executor
        self.interval = interval
        self.grace = grace
        self.stopping = threading.Event()

    def run(self) -> None:
        from tasker.metrics.multiprocess import cleanup_dead_processes, multiprocess_dir

        while True:
            try:
                sweep_lost_tasks(self.app, self.executor, grace_seconds=self.grace)
            except StoreError:
                logger.warning("sweep: database unavailable, retrying in %gs", self.interval)
            except Exception:  # the sweeper must outlive any one failure
                logger.exception("sweep failed")
            if multiprocess_dir():  # children killed without an exit hook leave live gauge files behind
                try:
                    cleanup_dead_processes()
                except (OSError, TaskerError):
                    logger.debug("could not clean up multiprocess metric files", exc_info=True)
            if self.stopping.wait(self.interval):
                return

    def stop(self) -> None:
        """Stop after the current sweep."""
        self.stopping.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=5)


# -- the per-process app ----------------------------------------------------------------------------


def resolve_factory(factory: AppFactory | str) -> AppFactory:
    """A factory from a callable or a ``"package.module:attribute"`` string."""
    if not isinstance(factory, str):
        return factory
    module_name, _, attribute = factory.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"app factory {factory!r} must look like 'package.module:factory'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load app factory {factory!r}: {exc}") from exc
    if not callable(target):
        raise ConfigurationError(f"app factory {factory!r} is not callable")
    return cast(AppFactory, target)


_processes: weakref.WeakSet[_ProcessApp] = weakref.WeakSet()


class _ProcessApp:
    """The Tasker of one Celery app in this process: built lazily, after any fork, via the factory."""

    def __init__(self, celery_app: Celery, factory: AppFactory | str, queue: str, dispatch_steps: bool | None) -> None:
        self.celery_app = celery_app
        self.factory = factory
        self.queue = queue
        self.dispatch_steps = dispatch_steps
        self._lock = threading.Lock()
        self._app: Tasker | None = None
        self._pid = os.getpid()
        self._sweeper: _Sweeper | None = None
        self._heartbeat: Heartbeat | None = None
        #: Whether this process runs its worker's sweeper (pool process 0, or the main process of a solo pool).
        self.sweeps_here = False
        _processes.add(self)

    def get(self) -> Tasker:
        """This process's Tasker (built on first use)."""
        app = self._app
        if app is not None and self._pid == os.getpid():
            return app
        with self._lock:
            if self._app is None or self._pid != os.getpid():
                self._app = self._build()
                self._pid = os.getpid()
                if self.sweeps_here:
                    self._start_sweeper(self._app)
            return self._app

    def _build(self) -> Tasker:
        from tasker.app import Tasker

        app = resolve_factory(self.factory)()
        if not isinstance(app, Tasker):
            raise ConfigurationError(f"app factory {self.factory!r} returned {type(app).__name__}, not a Tasker")
        executor = app.executor
        if not isinstance(executor, CeleryExecutor):
            dispatch = app.config.celery.dispatch_steps if self.dispatch_steps is None else self.dispatch_steps
            executor = CeleryExecutor(self.celery_app, queue=self.queue, dispatch_steps=dispatch)
            app.set_executor(executor)  # binds it to the app
        else:
            executor.bind(app)
        logger.info("tasker app built in process %s (executor queue %r)", os.getpid(), executor.queue)
        return app

    def built(self) -> Tasker | None:
        """The Tasker if this process built one."""
        return self._app if self._pid == os.getpid() else None

    def after_fork_in_child(self) -> None:
        """Forget what the parent built: the child builds its own app, pools and threads."""
        self._lock = threading.Lock()
        self._app = None
        self._sweeper = None
        self._heartbeat = None
        self.sweeps_here = False
        self._pid = os.getpid()

    def _start_sweeper(self, app: Tasker) -> None:
        """Start this worker's sweeper thread (not when ``celery.sweep_interval_seconds`` is 0)."""
        config = app.config.celery
        if config.sweep_interval_seconds <= 0 or self._sweeper is not None:
            return
        executor = cast(CeleryExecutor, app.executor)
        self._sweeper = _Sweeper(app, executor, config.sweep_interval_seconds, config.sweep_grace_seconds)
        self._sweeper.start()
        logger.info(
            "sweeper started in process %s: every %gs, tasks overdue by %gs",
            os.getpid(), config.sweep_interval_seconds, config.sweep_grace_seconds,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the sweeper, shut the app down and flush telemetry (a worker process is exiting)."""
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        app = self.built()
        if app is not None:
            try:
                app.shutdown()
            except Exception:
                logger.exception("tasker app shutdown failed")
            self._app = None
        flush_telemetry()

    # -- Celery signal receivers (connected weakly; the Celery app holds this object) ---------------

    def _is_ours(self, celery_app: Any = None) -> bool:
        from celery import current_app

        current = celery_app if celery_app is not None else current_app._get_current_object()
        return current is self.celery_app

    def on_worker_init(self, sender: Any = None, **_: Any) -> None:
        """Main process, before the pool starts: drop live gauge files left by dead processes."""
        from tasker.metrics.multiprocess import cleanup_dead_processes, multiprocess_dir

        if self._is_ours(getattr(sender, "app", None)) and multiprocess_dir():
            cleanup_dead_processes()

    def on_process_init(self, **_: Any) -> None:
        """A prefork child started: build its app (and telemetry); the first child also sweeps."""
        if not self._is_ours():
            return
        self.sweeps_here = _pool_index() == 0
        self._build_now()

    def _build_now(self) -> None:
        """Build this worker process's app and start its heartbeat (``tasker_workers_active``)."""
        try:
            app = self.get()
        except Exception:  # a broken factory must not crash-loop the pool; the first message tries again
            logger.exception("could not build the tasker app in worker process %s", os.getpid())
            return
        try:
            self._heartbeat = Heartbeat(app.db, app.worker_id, "celery").start()
        except TaskerError:
            logger.warning("worker process %s: no heartbeat (database not migrated?)", os.getpid(), exc_info=True)

    def on_process_shutdown(self, **_: Any) -> None:
        """A prefork child is exiting (recycled or stopping): flush spans, forget its live gauges."""
        if not self._is_ours():
            return
        started = time.monotonic()
        self.stop()
        logger.debug("worker process %s stopped in %.3fs", os.getpid(), time.monotonic() - started)
        from tasker.metrics.multiprocess import mark_process_dead, multiprocess_dir

        if multiprocess_dir():
            try:
                mark_process_dead(os.getpid())
            except OSError:
                logger.debug("could not mark process %s dead", os.getpid(), exc_info=True)

    def on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        """Main process is consuming: with a non-forking pool (solo, threads) the app lives here."""
        if not self._is_ours(getattr(sender, "app", None)) or _is_prefork(sender):
            return
        self.sweeps_here = True
        self._build_now()

    def on_worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        """Main process stopping: release what ``on_worker_ready`` built."""
        if self._is_ours(getattr(sender, "app", None)) and self.built() is not None:
            self.stop()


def _after_fork_in_child() -> None:
    for process_app in list(_processes):
        process_app.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _pool_index() -> int | None:
    from billiard.process import current_process

    index = getattr(current_process(), "index", None)
    return index if isinstance(index, int) else None


def _is_prefork(consumer: Any) -> bool:
    pool = getattr(consumer, "pool", None)
    return type(pool).__module__ == "celery.concurrency.prefork"


def flush_telemetry() -> None:
    """Flush and shut down the global tracer and meter providers (a worker process is about to exit)."""
    for provider in (trace.get_tracer_provider(), otel_metrics.get_meter_provider()):
        for method in ("force_flush", "shutdown"):
            call = getattr(provider, method, None)
            if call is None:
                continue
            try:
                call()
            except Exception:
                logger.warning("telemetry %s failed", method, exc_info=True)


# -- the Celery app ---------------------------------------------------------------------------------


def create_celery_app(
    app_factory: AppFactory | str | None = None,
    *,
    broker_url: str | None = None,
    queue: str | None = None,
    dispatch_steps: bool | None = None,
) -> Celery:
    """A Celery app that runs tasker passes: ``celery -A mypkg.tasks:celery_app worker``.

    ``app_factory`` (a callable or ``"pkg.mod:factory"``) builds the Tasker of each worker process; it is
    called after the fork, so it may set up tracer and meter providers. Without one, each process builds
    its app from the configuration (``$TASKER_CONFIG`` and ``TASKER_SECTION__KEY``, see
    :meth:`Tasker.from_config`), whose ``celery`` section also gives the broker and queue defaults.
    ``broker_url`` defaults to ``$CELERY_BROKER_URL``, then ``celery.broker_url``; ``queue`` to
    ``celery.queue``; ``dispatch_steps`` to the built app's ``config.celery.dispatch_steps``.
    """
    if app_factory is None:
        from tasker.app import Tasker
        from tasker.config import load_config
        from tasker.executors.base import InlineExecutor

        loaded = load_config()
        defaults = loaded.config.celery
        # Built inline, then given this process's CeleryExecutor by _ProcessApp._build.
        app_factory = functools.partial(Tasker.from_config, loaded, executor=InlineExecutor())
    else:
        defaults = CeleryConfig()
    broker = broker_url or os.environ.get("CELERY_BROKER_URL") or defaults.broker_url
    queue_name = queue or defaults.queue
    celery_app = Celery("tasker", broker=broker, set_as_current=True)
    celery_app.conf.update(
        task_default_queue=queue_name,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        # Passes can be long: a worker should not hoard messages other workers could run.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Building the app (templates, telemetry) in a new child may take longer than Celery's 4 s default.
        worker_proc_alive_timeout=30.0,
    )
    process_app = _ProcessApp(celery_app, app_factory, queue_name, dispatch_steps)
    celery_app.tasker_process = process_app
    _register_tasks(celery_app, process_app)
    signals.worker_init.connect(process_app.on_worker_init)
    signals.worker_process_init.connect(process_app.on_process_init)
    signals.worker_process_shutdown.connect(process_app.on_process_shutdown)
    signals.worker_ready.connect(process_app.on_worker_ready)
    signals.worker_shutdown.connect(process_app.on_worker_shutdown)
    return celery_app


def get_tasker(celery_app: Celery) -> Tasker:
    """The Tasker of this process for a Celery app made by :func:`create_celery_app` (producers use it too)."""
    process_app = getattr(celery_app, "tasker_process", None)
    if not isinstance(process_app, _ProcessApp):
        raise ConfigurationError("this Celery app was not made by tasker.executors.celery.create_celery_app")
    return process_app.get()


def _retry_on_store_error(task: Any, app: Tasker | None, exc: StoreError) -> None:
    """Retry a message whose pass or step failed on the database (raises Celery's Retry); returns on giving up."""
    config = app.config.celery if app is not None else CeleryConfig()
    retries = int(task.request.retries or 0)
    call = f"{task.name}{tuple(task.request.args or ())}"
    if retries >= config.store_retry_limit:
        logger.error("%s failed on the database (%s); giving up after %d retries", call, exc, retries)
        return  # the task stays overdue in the database: the sweep re-sends it
    countdown = min(config.store_retry_backoff_max_seconds, 2.0**retries) * random.uniform(0.5, 1.0)
    logger.warning("%s failed on the database (%s); retry %d in %.2fs", call, exc, retries + 1, countdown)
    task.retry(exc=exc, countdown=countdown, max_retries=config.store_retry_limit)


@contextmanager
def _message_trace(request: Any) -> Iterator[None]:
    """Make the message's trace context current when nothing else (an instrumentation) did."""
    if trace.get_current_span().get_span_context().is_valid:
        yield
        return
    carrier = {key: getattr(request, key, None) for key in ("traceparent", "tracestate")}
    with _current_trace({k: v for k, v in carrier.items() if isinstance(v, str)}):
        yield


def _register_tasks(celery_app: Celery, process_app: _ProcessApp) -> None:
    # shared=False: each Celery app runs its own process app (shared tasks would attach to every app).
    options: dict[str, Any] = {
        "bind": True, "shared": False, "acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
    }  # fmt: skip

    def handle(message: Any, task_id: int, work: Callable[[Tasker], str | None]) -> str | None:
        """Run ``work`` on this process's app: a vanished task drops the message, a database error retries it."""
        app: Tasker | None = None
        try:
            app = process_app.get()
            with _message_trace(message.request):
                return work(app)
        except TaskNotFoundError:
            logger.warning("task %s no longer exists; message dropped", task_id)
            return None
        except StoreError as exc:
            _retry_on_store_error(message, app, exc)
            raise

    def run_task(self: Any, task_id: int) -> str | None:
        """One orchestration pass of ``task_id``."""
        return handle(self, task_id, lambda app: app.run_task(int(task_id)))

    def run_step(self: Any, task_id: int, step_id: int, token: str) -> str | None:
        """Run one step a pass reserved for whichever worker receives this message."""
        return handle(self, task_id, lambda app: app.run_dispatched_step(int(task_id), int(step_id), str(token)))

    def sweep(self: Any) -> list[int]:
        """Re-send overdue tasks whose message may be lost (for ``celery beat``; workers also sweep alone)."""
        app = process_app.get()
        grace = app.config.celery.sweep_grace_seconds
        return sweep_lost_tasks(app, cast(CeleryExecutor, app.executor), grace_seconds=grace)

    celery_app.task(name=RUN_TASK, **options)(run_task)
    celery_app.task(name=RUN_STEP, **options)(run_step)
    celery_app.task(name=SWEEP, bind=True, shared=False, ignore_result=True)(sweep)


def run_celery_worker(
    app_factory: AppFactory | str,
    *,
    concurrency: int | None = None,
    queue: str | None = None,
    broker_url: str | None = None,
    pool: str = "prefork",
    loglevel: str = "INFO",
    extra_args: Sequence[str] = (),
) -> None:
    """Run a Celery worker for ``app_factory`` in this process (what ``celery -A ... worker`` does)."""
    celery_app = create_celery_app(app_factory, broker_url=broker_url, queue=queue)
    argv = ["worker", f"--loglevel={loglevel}", f"--pool={pool}", "-Q", celery_app.conf.task_default_queue]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    celery_app.worker_main([*argv, *extra_args])


__all__ = [
    "RUN_STEP",
    "RUN_TASK",
    "SWEEP",
    "CeleryExecutor",
    "Resender",
    "carrier_of",
    "create_celery_app",
    "flush_telemetry",
    "get_tasker",
    "resolve_factory",
    "run_celery_worker",
    "sweep_lost_tasks",
]
