"""BaseSubscriber: the class users extend to react to events, and the payload helpers subscribers share.

A subscriber lists its events in ``subscribe_to`` (plus any given at construction, e.g. from YAML) and defines
one ``handle_<event>`` method per event, the event name with dots and dashes as underscores
(``task.completed`` -> ``handle_task_completed``). Names are used exactly as given, custom ones included.
The helpers (reference §6.6) read payload values defensively for metrics and tags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tasker.errors import EventError

if TYPE_CHECKING:
    from tasker.events.publisher import Event, EventBus

Handler = Callable[["Event"], object]

# Reference §6.6 ErrorCategorizer: first match wins, case-insensitive, on the exception class name.
_ERROR_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE))
    for category, pattern in (
        ("timeout", r"Timeout"),
        ("network", r"Connection|Network"),
        ("not_found", r"NotFound|Missing|404"),
        ("auth", r"Unauthorized|Forbidden|401|403"),
        ("rate_limit", r"RateLimit|TooManyRequests|429"),
        ("client_error", r"BadRequest|Invalid|400"),
        ("server_error", r"ServerError|InternalError|500"),
        ("runtime", r"StandardError|RuntimeError|(^|\.)Exception$"),
    )
)


def categorize_error(exception_class: str | None) -> str:
    """Category of an exception class name: timeout, network, not_found, auth, rate_limit, ..., other."""
    if not exception_class or not str(exception_class).strip():
        return "unknown"
    for category, pattern in _ERROR_CATEGORIES:
        if pattern.search(str(exception_class)):
            return category
    return "other"


def handler_name(event_name: str) -> str:
    """The handler method for an event: ``order.payment-failed`` -> ``handle_order_payment_failed``."""
    return "handle_" + event_name.replace(".", "_").replace("-", "_").lower()


def _to_float(value: Any, default: float = 0.0) -> float:
    if value is None or isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _to_int(value: Any, default: int = 0) -> int:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return default


class BaseSubscriber:
    """Base class of event subscribers: list events in ``subscribe_to``, define ``handle_<event>`` methods."""

    #: Events this subscriber handles; instances may add more (``events=``, e.g. from YAML).
    subscribe_to: ClassVar[tuple[str, ...]] = ()
    #: ``"sync"``: handled in the publishing thread, in order with the engine. ``"background"``: queued (at most
    #: ``queue_size`` events, the rest dropped and counted) and handled, in order, on this subscriber's own thread.
    delivery: ClassVar[Literal["sync", "background"]] = "sync"
    queue_size: ClassVar[int] = 1000

    def __init__(
        self,
        name: str | None = None,
        events: Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a subscriber; ``events`` are appended to the class's ``subscribe_to``."""
        self.name: str = name or type(self).__name__
        declared = (self.subscribe_to,) if isinstance(self.subscribe_to, str) else tuple(self.subscribe_to)
        extra = (events,) if isinstance(events, str) else tuple(events or ())
        self.events: tuple[str, ...] = tuple(dict.fromkeys((*declared, *extra)))
        self.config: dict[str, Any] = dict(config or {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} events={list(self.events)}>"

    # -- subscription ----------------------------------------------------------------------------------------

    def should_process_event(self, event_name: str) -> bool:
        """Whether to subscribe to ``event_name`` at all; override to filter (default: all)."""
        return True

    def event_handlers(self) -> dict[str, Handler]:
        """Map each subscribed event to its bound handler; a missing handler raises :class:`EventError`."""
        handlers: dict[str, Handler] = {}
        for event_name in self.events:
            if not self.should_process_event(event_name):
                continue
            method = handler_name(event_name)
            handler = getattr(self, method, None)
            if not callable(handler):
                raise EventError(
                    f"{type(self).__name__} subscribes to '{event_name}' but has no handler method '{method}'"
                )
            handlers[event_name] = handler
        return handlers

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe every event to its handler on ``bus``; nothing is subscribed if any event is invalid."""
        for event_name in self.events:
            if self.should_process_event(event_name):
                bus.catalog.spec(event_name)  # an unknown name (a typo?) is the more useful error: first
        handlers = self.event_handlers()  # raises before anything is subscribed
        delivery = bus.background_delivery(self.name, self.queue_size) if self.delivery == "background" else None
        for event_name, handler in handlers.items():
            bus.subscribe(event_name, handler, subscriber_name=self.name, delivery=delivery)

    def unsubscribe(self, bus: EventBus) -> None:
        """Remove every handler of this subscriber from ``bus``."""
        for event_name, handler in self.event_handlers().items():
            bus.unsubscribe(event_name, handler)

    # -- payload helpers (reference §6.6) --------------------------------------------------------------------

    @staticmethod
    def safe_get(event: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
        """``event[key]`` for events and plain dicts; ``default`` when the event, key or value is missing."""
        if event is None:
            return default
        try:
            value = event.get(key)
        except Exception:
            return default
        return default if value is None else value

    categorize_error = staticmethod(categorize_error)

    def extract_core_attributes(self, event: Mapping[str, Any] | None) -> dict[str, Any]:
        """``task_id`` (default ``"unknown"``), ``step_id`` (when set) and ``event_timestamp``."""
        attributes: dict[str, Any] = {"task_id": self.safe_get(event, "task_id", "unknown")}
        step_id = self.safe_get(event, "step_id")
        if step_id is not None:
            attributes["step_id"] = step_id
        timestamp = self.safe_get(event, "timestamp") or datetime.now(UTC).isoformat()
        attributes["event_timestamp"] = str(timestamp)
        return attributes

    def extract_step_attributes(self, event: Mapping[str, Any] | None) -> dict[str, Any]:
        """Core attributes plus ``step_id`` and ``step_name`` (default ``"unknown_step"``)."""
        return {
            **self.extract_core_attributes(event),
            "step_id": self.safe_get(event, "step_id"),
            "step_name": self.safe_get(event, "step_name", "unknown_step"),
        }

    def extract_timing_metrics(self, event: Mapping[str, Any] | None) -> dict[str, Any]:
        """Duration (seconds), start/end timestamps and step counts; numbers coerced (``"30.5"`` -> 30.5)."""
        return {
            "execution_duration": _to_float(self.safe_get(event, "execution_duration")),
            "started_at": self.safe_get(event, "started_at"),
            "completed_at": self.safe_get(event, "completed_at"),
            "step_count": _to_int(self.safe_get(event, "total_steps")),
            "completed_steps": _to_int(self.safe_get(event, "completed_steps")),
            "failed_steps": _to_int(self.safe_get(event, "failed_steps")),
        }

    def extract_error_metrics(self, event: Mapping[str, Any] | None) -> dict[str, Any]:
        """Message, class, category (:func:`categorize_error`), attempt, retryability, final failure."""
        error_class = str(self.safe_get(event, "exception_class", "UnknownError"))
        attempt_number = _to_int(self.safe_get(event, "attempt_number"), 1)
        retry_limit = _to_int(self.safe_get(event, "retry_limit"), 1)
        return {
            "error_message": str(self.safe_get(event, "error_message", "unknown_error")),
            "error_class": error_class,
            "error_type": categorize_error(error_class),
            "attempt_number": attempt_number,
            "is_retryable": bool(self.safe_get(event, "retryable", False)),
            "final_failure": attempt_number >= retry_limit,
        }

    def extract_numeric_metric(self, event: Mapping[str, Any] | None, key: str, default: float = 0) -> float:
        """``event[key]`` as a float; missing or non-numeric values give ``default``."""
        return _to_float(self.safe_get(event, key), float(default))

    def extract_metric_tags(self, event: Mapping[str, Any] | None) -> list[str]:
        """``key:value`` tags: task, step, environment, source, retryable, attempt, priority (when known)."""
        tags: list[str] = []
        task_name = self.safe_get(event, "task_name")
        if task_name and task_name != "unknown":
            tags.append(f"task:{task_name}")
        step_name = self.safe_get(event, "step_name")
        if step_name and step_name != "unknown_step":
            tags.append(f"step:{step_name}")
        environment = (
            self.safe_get(event, "environment")
            or self.config.get("environment")
            or os.environ.get("TASKER_ENV", "development")
        )
        tags.append(f"environment:{environment}")
        source = self.safe_get(event, "source_system")
        if source:
            tags.append(f"source:{source}")
        retryable = self.safe_get(event, "retryable")
        if retryable:
            tags.append(f"retryable:{str(retryable).lower()}")
        attempt = self.safe_get(event, "attempt_number")
        if attempt is not None:
            tags.append(f"attempt:{attempt}")
        priority = self.safe_get(event, "priority")
        if priority is not None:
            tags.append(f"priority:{priority}")
        return tags

    @staticmethod
    def build_metric_name(base: str, event_type: str) -> str:
        """``f"{base}.{event_type}"`` with runs of dots squeezed: ``("tasker.task", "completed")``."""
        return re.sub(r"\.{2,}", ".", f"{base}.{event_type}")
