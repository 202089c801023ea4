"""OpenTelemetry messaging metrics (semantic conventions v1.44), recorded the way apalis records them.

``messaging.client.sent.messages`` counts tasks sent; every step execution counts one
``messaging.client.consumed.messages`` and records its ``messaging.process.duration``, both with a
``tasker.status`` attribute (``ok`` or ``error``) and, on failure, ``error.type`` (the fully qualified exception
class). Destinations are task names (``namespace.name``, low-cardinality). ``messaging.destination.partition.id``
is the configured worker name (``metrics.worker_name``: bounded, stable across restarts), never a host:pid.
The duration histogram uses :data:`MESSAGING_BUCKETS`, apalis' 18 boundaries for background jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

SYSTEM = "tasker"
SENT_MESSAGES = "messaging.client.sent.messages"
CONSUMED_MESSAGES = "messaging.client.consumed.messages"
PROCESS_DURATION = "messaging.process.duration"
STATUS = "tasker.status"

#: Histogram boundaries (seconds) for background jobs: 5 ms ... 10 min, 18 of them (as apalis).
MESSAGING_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip


def destination_name(namespace: str, name: str) -> str:
    """A task's messaging destination: ``namespace.name``."""
    return f"{namespace}.{name}"


class OTelMessagingMetrics:
    """Records the semconv messaging metrics for tasks sent to and processed by workers."""

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        buckets: Sequence[float] = MESSAGING_BUCKETS,
        worker_name: str | None = None,
    ) -> None:
        from tasker.telemetry.subscriber import SCOPE_NAME, scope_version

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter(SCOPE_NAME, scope_version())
        self.worker_name = worker_name
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

    def _attributes(self, operation: str, destination: str) -> dict[str, str]:
        attributes = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": operation,
            "messaging.destination.name": destination,
        }
        if operation == "process" and self.worker_name:
            attributes["messaging.destination.partition.id"] = self.worker_name
        return attributes

    def message_sent(self, destination: str) -> None:
        """A task was sent to ``destination`` (counted once per send attempt)."""
        self._sent.add(1, self._attributes("send", destination))

    def processed(self, destination: str, duration: float, error_type: str | None = None) -> None:
        """One step of a ``destination`` task ran for ``duration`` seconds; ``error_type`` when it failed."""
        attributes = self._attributes("process", destination)
        attributes[STATUS] = "ok" if error_type is None else "error"
        if error_type is not None:
            attributes["error.type"] = error_type
        self._consumed.add(1, attributes)
        self._duration.record(duration, attributes)
