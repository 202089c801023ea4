"""Step handlers used by the tests, configured through ``handler_config``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class Call:
    """One handler invocation."""

    task_id: int
    step: str
    attempt: int
    thread: str
    start: float
    end: float


_lock = threading.Lock()
CALLS: list[Call] = []


def reset() -> None:
    """Forget recorded calls and barriers."""
    with _lock:
        CALLS.clear()
        _barriers.clear()


def calls(step: str | None = None) -> list[Call]:
    """Recorded calls, optionally of one step."""
    with _lock:
        return [c for c in CALLS if step is None or c.step == step]


class Record(StepHandler):
    """Records the call; sleeps ``sleep`` seconds; fails the first ``fail_times`` attempts.

    ``error`` picks the failure: ``retryable`` (with ``retry_after``), ``permanent`` or ``exception``.
    """

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        start = time.monotonic()
        if self.config.get("sleep"):
            time.sleep(float(self.config["sleep"]))
        end = time.monotonic()
        with _lock:
            CALLS.append(Call(task.task_id, step.name, step.attempts + 1, threading.current_thread().name, start, end))
        if step.attempts < int(self.config.get("fail_times", 0)):
            kind = self.config.get("error", "exception")
            if kind == "retryable":
                raise RetryableError("try later", retry_after=self.config.get("retry_after"))
            if kind == "permanent":
                raise PermanentError("cannot ever work", error_code="NOPE")
            raise RuntimeError(f"boom on attempt {step.attempts + 1}")
        return {"step": step.name, "attempt": step.attempts + 1}


class Noop(StepHandler):
    """Returns at once (benchmarks, structure tests)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"ok": True}


RECORD = "tests.support.handlers:Record"


def template(
    name: str = "diamond",
    steps: dict[str, list[str]] | None = None,
    configs: dict[str, dict[str, Any]] | None = None,
    *,
    namespace: str = "default",
    version: str = "1.0.0",
    retry_limit: int = 3,
    handler: str = RECORD,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A template dict: ``steps`` maps step name -> parent names (default: a diamond)."""
    steps = steps if steps is not None else {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    data: dict[str, Any] = {
        "name": name,
        "namespace_name": namespace,
        "version": version,
        "step_templates": [
            {
                "name": step,
                "handler_class": handler,
                "depends_on_steps": parents,
                "default_retry_limit": retry_limit,
                "handler_config": (configs or {}).get(step, {}),
            }
            for step, parents in steps.items()
        ],
    }
    if schema is not None:
        data["schema"] = schema
    return data


def chain(n: int) -> dict[str, list[str]]:
    """Steps s0 -> s1 -> ... -> s(n-1)."""
    return {f"s{i}": ([f"s{i - 1}"] if i else []) for i in range(n)}


def fan_out(width: int) -> dict[str, list[str]]:
    """root -> m0 .. m(width-1) -> merge."""
    middle = {f"m{i}": ["root"] for i in range(width)}
    return {"root": [], **middle, "merge": list(middle)}


_barriers: dict[str, threading.Barrier] = {}


def barrier(group: str, parties: int) -> threading.Barrier:
    """A barrier shared by handlers of one group (created on first use)."""
    with _lock:
        if group not in _barriers:
            _barriers[group] = threading.Barrier(parties)
        return _barriers[group]


class Rendezvous(StepHandler):
    """Waits until ``parties`` steps of ``group`` are inside process() at the same time."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        waiting = barrier(str(self.config["group"]), int(self.config.get("parties", 2)))
        index = waiting.wait(timeout=float(self.config.get("timeout", 10)))
        return {"thread": threading.current_thread().name, "arrival": index}


class FileRecord(StepHandler):
    """Cross-process call log: appends ``start``/``end`` lines to ``log``; sleeps ``sleep`` in between."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        import os

        line = f"{task.task_id} {step.name} {step.attempts + 1} {os.getpid()}"
        with open(self.config["log"], "a") as log:
            log.write(f"start {line}\n")
        time.sleep(float(self.config.get("sleep", 0)))
        with open(self.config["log"], "a") as log:
            log.write(f"end {line}\n")
        return {"pid": os.getpid()}


def read_log(path: str) -> list[tuple[str, int, str, int, int]]:
    """Parsed FileRecord lines: (event, task_id, step, attempt, pid)."""
    out = []
    with open(path) as log:
        for line in log:
            event, task_id, step, attempt, pid = line.split()
            out.append((event, int(task_id), step, int(attempt), int(pid)))
    return out


class FailWhileFlagged(StepHandler):
    """Fails while the file ``flag`` exists (``error``: ``exception`` or ``permanent``), then succeeds.

    The message quotes a secret (``password=hunter2``) so that masking of error messages can be checked.
    """

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        import os

        if os.path.exists(self.config["flag"]):
            if self.config.get("error") == "permanent":
                raise PermanentError("card declined: password=hunter2", error_code="DECLINED")
            raise RuntimeError("gateway down: password=hunter2\nsecond line")
        return {"attempt": step.attempts + 1}


FLAGGED = "tests.support.handlers:FailWhileFlagged"


class SlowFirstAttempt(StepHandler):
    """Appends ``start <attempt> <pid>`` to ``log``; the first attempt then sleeps ``sleep`` seconds."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        import os

        with open(self.config["log"], "a") as log:
            log.write(f"start {step.attempts + 1} {os.getpid()}\n")
        if step.attempts == 0:
            time.sleep(float(self.config.get("sleep", 60)))
        return {"attempt": step.attempts + 1, "pid": os.getpid()}
