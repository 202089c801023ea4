"""Step handlers and subscribers that misbehave the way user code does, for the fault tests.

``Fault`` does what ``handler_config["fault"]`` says on its first ``times`` attempts (all of them when
``times`` is absent) and succeeds afterwards; with ``log`` it appends ``start``/``end`` lines (a ledger, see
:func:`read_ledger`) so that tests in other processes can count and time runs.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.events import BaseSubscriber, Event

#: Results that cannot be stored as JSON, by name, with the key path the error must name.
POISON: dict[str, tuple[Any, str]] = {
    "datetime": ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, "results.at: datetime is not JSON-serializable"),
    "decimal": ({"price": Decimal("9.50")}, "results.price: Decimal is not JSON-serializable"),
    "uuid": ({"ids": [uuid.UUID(int=1)]}, "results.ids[0]: UUID is not JSON-serializable"),
    "set": ({"tags": {"a"}}, "results.tags: set is not JSON-serializable"),
    "bytes": ({"raw": {"blob": b"x"}}, "results.raw.blob: bytes is not JSON-serializable"),
    "object": ({"obj": object()}, "results.obj: object is not JSON-serializable"),
    "nan": ({"ratio": math.nan}, "results.ratio: nan is not valid JSON"),
    "infinity": ({"ratio": [1.0, math.inf]}, "results.ratio[1]: inf is not valid JSON"),
    "nul": ({"text": "a\u0000b"}, "results.text: string contains a NUL character"),
    "key": ({1: "one"}, "results: key 1 is not a string"),
}

#: BaseException kinds a handler (or subscriber) may raise, by name.
INTERRUPTIONS: dict[str, type[BaseException]] = {
    "keyboard_interrupt": KeyboardInterrupt,
    "system_exit": SystemExit,
    "cancelled": asyncio.CancelledError,
    "generator_exit": GeneratorExit,
}

#: Released by tests to let hanging handlers return (a late result).
release = threading.Event()


@dataclass(frozen=True)
class Entry:
    """One ledger line: a handler run started or ended."""

    what: str
    task_id: int
    step: str
    attempt: int
    pid: int
    at: float


def _log(config: dict[str, Any], what: str, task: TaskView, step: StepView) -> None:
    if config.get("log"):
        with open(config["log"], "a") as log:
            log.write(f"{what} {task.task_id} {step.name} {step.attempts + 1} {os.getpid()} {time.time()}\n")


def read_ledger(path: str | os.PathLike[str]) -> list[Entry]:
    """The ledger's complete lines (a line cut short by a SIGKILL is ignored)."""
    entries = []
    with open(path) as log:
        for line in log:
            parts = line.split()
            if len(parts) == 6 and line.endswith("\n"):
                entries.append(Entry(parts[0], int(parts[1]), parts[2], int(parts[3]), int(parts[4]), float(parts[5])))
    return entries


class Fault(StepHandler):
    """Misbehaves as ``fault`` says (a poisoned result, an interruption, a hang) on the first ``times`` attempts."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        _log(self.config, "start", task, step)
        if self.config.get("sleep"):
            time.sleep(float(self.config["sleep"]))
        fault = self.config.get("fault")
        if fault and step.attempts < int(self.config.get("times", 1_000_000)):
            if fault in POISON:
                _log(self.config, "end", task, step)
                return POISON[fault][0]
            if fault in INTERRUPTIONS:
                raise INTERRUPTIONS[fault]()
            if fault == "hang":  # until past the deadline and released: the late run of a timed-out step
                while not step.past_deadline():
                    time.sleep(0.01)
                release.wait(30)
                return {"late": True}
        _log(self.config, "end", task, step)
        return {"ok": True, "attempt": step.attempts + 1}


class Interrupting(BaseSubscriber):
    """Raises ``config["raise"]`` (an :data:`INTERRUPTIONS` name) on ``step.before_handle``, ``times`` times."""

    subscribe_to = ("step.before_handle",)

    def handle_step_before_handle(self, event: Event) -> None:
        if int(self.config.get("times", 1)) > 0:
            self.config["times"] = int(self.config.get("times", 1)) - 1
            raise INTERRUPTIONS[self.config["raise"]]()


class Sleepy(BaseSubscriber):
    """Sleeps ``config["seconds"]`` on every event it subscribes to (a slow synchronous subscriber)."""

    def __init__(self, events: tuple[str, ...], seconds: float) -> None:
        super().__init__(events=events, config={"seconds": seconds})
        for name in events:
            setattr(self, "handle_" + name.replace(".", "_"), self._sleep)

    def _sleep(self, event: Event) -> None:
        time.sleep(float(self.config["seconds"]))
