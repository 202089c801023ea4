"""Benchmark: cost of one ``EventBus.publish`` against a raw ``blinker.Signal.send`` to the same receivers.

Run ``python bench/events.py [iterations]``. Both sides build the same fresh 15-key step payload on every
call; ours also adds the timestamp, masks the payload with the default filter and wraps it in an Event. Exits
with status 1 when, with one subscriber, publishing costs more than 3x the raw send.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import blinker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench

from bench import per_call_us
from tasker.events import Event, EventBus

MAX_RATIO = 3.0


def make_payload() -> dict[str, Any]:
    """A realistic ``step.completed`` payload (15 keys, timestamp left to the bus)."""
    return {
        "task_id": 1234,
        "step_id": 98765,
        "step_name": "charge_card",
        "task_name": "order_process",
        "namespace": "payments",
        "version": "1.2.0",
        "attempt_number": 1,
        "retry_limit": 3,
        "event_type": "completed",
        "started_at": "2024-01-01T12:00:00.000000+00:00",
        "completed_at": "2024-01-01T12:00:01.250000+00:00",
        "execution_duration": 1.25,
        "from_state": "in_progress",
        "to_state": "complete",
        "step_results": {"charge_id": "ch_123", "amount_cents": 4200},
    }


def measure(subscribers: int, iterations: int) -> tuple[float, float]:
    """(tasker µs/publish, raw blinker µs/send) with ``subscribers`` no-op receivers."""
    bus = EventBus()
    raw = blinker.Namespace().signal("step.completed")
    for _ in range(subscribers):

        def on_event(event: Event) -> None:
            pass

        def on_raw(sender: object, **kwargs: Any) -> None:
            pass

        bus.subscribe("step.completed", on_event)
        raw.connect(on_raw, weak=False)

    publish = bus.publish
    send = raw.send

    def ours() -> None:
        publish("step.completed", make_payload())

    def theirs() -> None:
        send(None, payload=make_payload())

    return per_call_us(ours, iterations, 5, time.perf_counter), per_call_us(theirs, iterations, 5, time.perf_counter)


def main(argv: list[str]) -> int:
    """Print the comparison table; non-zero exit when the 1-subscriber ratio exceeds the limit."""
    iterations = int(argv[1]) if len(argv) > 1 else 50_000
    print(f"{iterations} iterations, best of 5, Python {sys.version.split()[0]}, blinker {_blinker_version()}")
    print(f"{'subscribers':>11} | {'tasker µs/publish':>17} | {'raw blinker µs/send':>19} | {'ratio':>5}")
    print(f"{'-' * 11}-+-{'-' * 17}-+-{'-' * 19}-+-{'-' * 5}")
    ratios = {}
    for count in (0, 1, 5):
        ours, raw = measure(count, iterations)
        ratios[count] = ours / raw
        print(f"{count:>11} | {ours:>17.3f} | {raw:>19.3f} | {ours / raw:>5.2f}")
    if ratios[1] > MAX_RATIO:
        print(f"FAIL: 1-subscriber ratio {ratios[1]:.2f} exceeds {MAX_RATIO}")
        return 1
    return 0


def _blinker_version() -> str:
    from importlib.metadata import version

    return version("blinker")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
