"""StepHandler: the class users subclass to implement one step of a workflow."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from tasker.handlers.aio import EventLoop, run_blocking
from tasker.views import StepSequence, StepView, TaskView

EventSink = Callable[[str, Mapping[str, Any]], None]


class StepHandler:
    """One step's behaviour: implement :meth:`process`; its return value becomes ``step.results``.

    ``process`` may be ``async def``: it then runs on the app's event loop (:mod:`tasker.handlers.aio`),
    cancelled if it outlasts the step's ``timeout_seconds``.

    ``handler_config`` from the template arrives as ``self.config``. Custom events the handler
    publishes are declared in ``custom_events`` (a list of ``{"name": ..., "description": ...}``);
    they are registered when a template using the handler is loaded.
    """

    custom_events: ClassVar[list[dict[str, str]]] = []

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self._event_sink: EventSink | None = None
        self._loop: EventLoop | None = None
        #: Seconds an async ``process`` may run before it is cancelled (set by the engine; None: no limit).
        self.timeout: float | None = None

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        """Do the step's work and return its results (JSON-serialisable)."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(task, sequence, step)")

    def handle(self, task: TaskView, sequence: StepSequence, step: StepView) -> None:
        """The engine's entry point: :meth:`process`, then :meth:`process_results` (subclasses rarely override)."""
        initial = step.results
        output = self.run_process(task, sequence, step)
        self.process_results(step, output, initial)

    def run_process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        """:meth:`process`; an awaitable it returns (``async def``) is run on the engine's loop within :attr:`timeout`."""
        output = self.process(task, sequence, step)
        if inspect.isawaitable(output):
            output = run_blocking(output, self._loop, self.timeout, step.name)
        return output

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        """Store ``process_output`` as the results unless ``process()`` set ``step.results`` itself."""
        if step.results is initial_results or step.results == initial_results:
            step.results = process_output

    def publish_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Publish a custom event from inside ``process()``.

        ``name`` may be a template's dot-less ``custom_events`` name (it is looked up under the
        template's namespace too). An undeclared name logs a warning and counts
        ``tasker_handler_undeclared_events_total`` but does not fail the step, as in Ruby Tasker.
        """
        if self._event_sink is None:
            raise RuntimeError("publish_event is only available while the engine runs this handler")
        self._event_sink(name, dict(payload or {}))

    @classmethod
    def custom_event_configuration(cls) -> list[dict[str, str]]:
        """The custom events this handler class declares."""
        return [dict(e) for e in cls.custom_events]

    def bind_event_sink(self, sink: EventSink | None) -> None:
        """Engine hook: where :meth:`publish_event` sends events."""
        self._event_sink = sink

    @classmethod
    def is_async(cls) -> bool:
        """Whether :meth:`process` is ``async def`` (its timeout then cancels it on the engine's loop)."""
        return inspect.iscoroutinefunction(cls.process)

    def bind_loop(self, loop: EventLoop | None, timeout: float | None = None) -> None:
        """Engine hook: the event loop an async :meth:`process` runs on, and its timeout."""
        self._loop, self.timeout = loop, timeout
