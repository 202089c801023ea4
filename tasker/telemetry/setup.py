"""Provider setup from ``TelemetryConfig``, and the telemetry an app creates for itself.

:func:`build_tracer_provider` makes an SDK ``TracerProvider`` with a ``service.name``/``service.version``
resource, a ``ParentBased(TraceIdRatioBased(sampling_ratio))`` sampler (the same arithmetic as the per-task
head-sampling decision) and, for the ``console`` or ``otlp`` exporter, a ``BatchSpanProcessor``, wrapped in a
:class:`~tasker.telemetry.sampling.TailSamplingProcessor` when tail sampling is enabled.

:func:`app_telemetry` is what ``Tasker`` calls: with telemetry enabled and an exporter configured it builds a
provider and subscribes a :class:`~tasker.telemetry.TelemetrySubscriber` to the app's events; the returned
:class:`AppTelemetry` flushes and shuts down that provider on ``app.shutdown()`` (a provider the user passed to
their own subscriber is theirs to shut down). The SDK's ``BatchSpanProcessor`` restarts its worker thread in a
forked child and the provider shuts down at interpreter exit; a child that leaves with ``os._exit`` (Celery
prefork recycling) must call :meth:`AppTelemetry.force_flush` first.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tasker.config import TelemetryConfig
from tasker.errors import ConfigurationError
from tasker.events import EventBus
from tasker.telemetry.sampling import TailSamplingProcessor
from tasker.telemetry.subscriber import TelemetrySubscriber

logger = logging.getLogger(__name__)

OTLP_INSTALL_HINT = "pip install 'tasker-engine[otlp]'"


def _otlp_exporter(config: TelemetryConfig) -> SpanExporter:
    factory: Callable[..., SpanExporter]
    try:
        if config.otlp_protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            factory = GrpcExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            factory = HttpExporter
    except ImportError as exc:
        raise ConfigurationError(
            f"telemetry exporter 'otlp' ({config.otlp_protocol}) needs the OTLP exporter: {OTLP_INSTALL_HINT}"
        ) from exc
    endpoint = config.otlp_endpoint
    timeout = config.export_timeout_seconds  # bounds each export, retries included
    if endpoint is None:  # the exporter's own default / OTEL_EXPORTER_OTLP_* environment variables
        return factory(timeout=timeout)
    if config.otlp_protocol == "http/protobuf" and urlsplit(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"  # a collector base URL, like OTEL_EXPORTER_OTLP_ENDPOINT
    return factory(endpoint=endpoint, timeout=timeout)


def build_exporter(config: TelemetryConfig) -> SpanExporter | None:
    """The exporter ``config.exporter`` names (None for ``none``)."""
    if config.exporter == "console":
        return ConsoleSpanExporter(service_name=config.service_name, out=sys.stdout)  # stdout as of now
    if config.exporter == "otlp":
        return _otlp_exporter(config)
    return None


def build_span_processor(config: TelemetryConfig, exporter: SpanExporter) -> SpanProcessor:
    """A BatchSpanProcessor for ``exporter``, behind the tail sampler when ``tail_sampling.enabled``."""
    processor: SpanProcessor = BatchSpanProcessor(exporter, export_timeout_millis=config.export_timeout_seconds * 1000)
    tail = config.tail_sampling
    if tail.enabled:
        processor = TailSamplingProcessor(
            processor,
            keep_ratio=tail.keep_ratio,
            slow_threshold_seconds=tail.slow_threshold_seconds,
            max_traces=tail.max_traces,
            max_spans_per_trace=tail.max_spans_per_trace,
            decision_wait_seconds=tail.decision_wait_seconds,
        )
    return processor


def build_tracer_provider(
    config: TelemetryConfig | None = None, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """An SDK TracerProvider for ``config`` (resource, sampler, exporter pipeline).

    ``exporter`` replaces the configured one (e.g. an in-memory exporter). Without either (``exporter:
    none``) the provider has no span processor: add your own with ``add_span_processor``.
    """
    config = config or TelemetryConfig()
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name, "service.version": config.service_version}),
        sampler=ParentBased(TraceIdRatioBased(config.sampling_ratio)),
    )
    exporter = exporter if exporter is not None else build_exporter(config)
    if exporter is not None:
        provider.add_span_processor(build_span_processor(config, exporter))
    return provider


@dataclass
class AppTelemetry:
    """The telemetry an app created: its provider (owned by the app) and the subscriber feeding it."""

    provider: TracerProvider
    subscriber: TelemetrySubscriber
    export_timeout_seconds: float = 5.0
    closed: bool = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """End spans left open, export what is queued and shut the provider down, within the export timeout."""
        if self.closed:
            return
        self.closed = True
        self.subscriber.close()
        # The provider's shutdown exports what is queued, batch by batch; a dead collector must not hold the
        # app's shutdown longer than one export timeout, so it runs in a thread we stop waiting for.
        closing = threading.Thread(target=self.provider.shutdown, name="tasker-telemetry-shutdown", daemon=True)
        closing.start()
        closing.join(self.export_timeout_seconds)
        if closing.is_alive():
            logger.warning(
                "telemetry: spans not exported within %gs (collector unreachable?)", self.export_timeout_seconds
            )


def app_telemetry(config: TelemetryConfig, events: EventBus) -> AppTelemetry | None:
    """Build a provider and subscribe a TelemetrySubscriber when ``config`` asks for exported traces."""
    if not config.enabled or config.exporter == "none":
        return None
    provider = build_tracer_provider(config)
    subscriber = TelemetrySubscriber(
        provider,
        service_name=config.service_name,
        service_version=config.service_version,
        propagation=config.propagation,
        masker=events.masker,
    )
    events.subscribe_subscriber(subscriber)
    logger.debug("telemetry: %s exporter, sampling ratio %s", config.exporter, config.sampling_ratio)
    return AppTelemetry(provider, subscriber, config.export_timeout_seconds)
