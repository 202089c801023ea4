"""OpenTelemetry messaging metrics (semantic conventions v1.44): sent, consumed and process duration.

Recorded on an injected ``MeterProvider`` (the global one when none is given). Destinations are task names
(``namespace.name``, low-cardinality); the worker name goes in ``messaging.destination.partition.id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

from tasker.config import JOB_BUCKETS

SYSTEM = "tasker"
SENT_MESSAGES = "messaging.client.sent.messages"
CONSUMED_MESSAGES = "messaging.client.consumed.messages"
PROCESS_DURATION = "messaging.process.duration"


def destination_name(namespace: str, name: str) -> str:
    """A task's messaging destination: ``namespace.name``."""
    return f"{namespace}.{name}"


class OTelMessagingMetrics:
    """Records the semconv messaging metrics for tasks sent to and processed by workers."""

    def __init__(self, meter_provider: MeterProvider | None = None, buckets: Sequence[float] = JOB_BUCKETS) -> None:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("tasker")
        self._sent = meter.create_counter(
            SENT_MESSAGES, unit="{message}", description="Number of messages producers attempted to send."
        )
        self._consumed = meter.create_counter(
            CONSUMED_MESSAGES, unit="{message}", description="Number of messages delivered to consumers."
        )
        self._duration = meter.create_histogram(
            PROCESS_DURATION,
            unit="s",
            description="Duration of processing operation.",
            explicit_bucket_boundaries_advisory=list(buckets),
        )

    @staticmethod
    def _attributes(operation: str, destination: str, worker: str | None = None) -> dict[str, str]:
        attributes = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": operation,
            "messaging.destination.name": destination,
        }
        if worker is not None:
            attributes["messaging.destination.partition.id"] = worker
        return attributes

    def message_sent(self, destination: str) -> None:
        """A task was sent to ``destination`` (counted once per send attempt)."""
        self._sent.add(1, self._attributes("send", destination))

    def message_consumed(self, destination: str, worker: str) -> None:
        """``worker`` received a task from ``destination``."""
        self._consumed.add(1, self._attributes("process", destination, worker))

    def processed(self, destination: str, worker: str, duration: float, error_type: str | None = None) -> None:
        """``worker`` processed a task for ``duration`` seconds; ``error_type`` only when it failed."""
        attributes = self._attributes("process", destination, worker)
        if error_type is not None:
            attributes["error.type"] = error_type
        self._duration.record(duration, attributes)
