"""Where ``StepHandler.publish_event`` sends events: the app's bus, forgiving as Ruby Tasker is."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasker.events import EventBus
    from tasker.metrics import MetricsBackend

logger = logging.getLogger(__name__)

#: Counter of events handlers published without declaring them (labels: handler, event).
UNDECLARED_EVENTS_METRIC = "tasker_handler_undeclared_events_total"


class HandlerEventSink:
    """Publishes a handler's events for a task of ``namespace``.

    A name is looked up as written, then (when it has no dot) as ``<namespace>.<name>``, the name a
    template's dot-less ``custom_events`` entry is registered under. An undeclared name is not an
    error (Ruby logs and carries on): it logs a warning naming the handler and the event, counts
    ``tasker_handler_undeclared_events_total`` and is not delivered. ``app.events.publish`` itself
    stays strict.
    """

    def __init__(self, events: EventBus, metrics: MetricsBackend, namespace: str, handler: str) -> None:
        self.events = events
        self.metrics = metrics
        self.namespace = namespace
        self.handler = handler

    def __call__(self, name: str, payload: Mapping[str, Any]) -> None:
        candidates = [name] if "." in name else [name, f"{self.namespace}.{name}"]
        for candidate in candidates:
            if candidate in self.events.catalog:
                self.events.publish(candidate, payload)
                return
        logger.warning(
            "handler %s published undeclared event '%s' (declare it in the template's custom_events or the "
            "handler's custom_events); not delivered",
            self.handler,
            name,
        )
        self.metrics.counter(UNDECLARED_EVENTS_METRIC, handler=self.handler, event=name).inc()
