"""Subscriber classes the YAML subscription tests refer to by import path."""

from __future__ import annotations

from typing import Any

from tasker.events import BaseSubscriber, Event


class AuditSubscriber(BaseSubscriber):
    """Records every event it handles."""

    subscribe_to = ("task.completed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Event] = []

    def handle_task_completed(self, event: Event) -> None:
        self.seen.append(event)

    def handle_step_failed(self, event: Event) -> None:
        self.seen.append(event)

    def handle_order_fulfilled(self, event: Event) -> None:
        self.seen.append(event)


class Exploding(BaseSubscriber):
    """Fails in its constructor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot start")


class NotASubscriber:
    """A class that does not extend BaseSubscriber."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
