"""Provider setup from ``TelemetryConfig``, and the telemetry an app creates for itself.

:func:`build_tracer_provider` makes an SDK ``TracerProvider`` with a resource (``OTEL_RESOURCE_ATTRIBUTES`` and
``OTEL_SERVICE_NAME`` included, see ``TelemetryConfig``), a ``ParentBased(TraceIdRatioBased(sampling_ratio))``
sampler (the same arithmetic as the per-task head-sampling decision) and, for the ``console`` or ``otlp``
exporter, a ``BatchSpanProcessor``, wrapped in a :class:`~tasker.telemetry.sampling.TailSamplingProcessor` when
tail sampling is enabled.

:func:`app_telemetry` is what ``Tasker`` calls. With an exporter configured and **no global provider yet**, it
builds one and installs it as the process's global TracerProvider (and, for ``otlp``, a global MeterProvider),
so the spans of instrumentations (httpx, psycopg, Celery, ...) share its pipeline and nest under the current
step span. When the process already has a global provider (``opentelemetry-instrument``, or the application
set one up), it uses that one and adds nothing. Either way a :class:`~tasker.telemetry.TelemetrySubscriber`
is subscribed to the app's events. :meth:`AppTelemetry.shutdown` flushes; the SDK shuts the global providers
down at interpreter exit, and a child that leaves with ``os._exit`` (Celery prefork recycling) must call
:meth:`AppTelemetry.force_flush` first.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
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


def _otlp(config: TelemetryConfig, signal: str) -> Any:
    """The OTLP exporter of ``signal`` (``trace`` or ``metric``) for the configured protocol and endpoint."""
    factory: Callable[..., Any]
    package = "grpc" if config.otlp_protocol == "grpc" else "http"
    try:
        module = __import__(f"opentelemetry.exporter.otlp.proto.{package}.{signal}_exporter", fromlist=["_"])
    except ImportError as exc:
        raise ConfigurationError(
            f"telemetry exporter 'otlp' ({config.otlp_protocol}) needs the OTLP exporter: {OTLP_INSTALL_HINT}"
        ) from exc
    factory = getattr(module, "OTLPSpanExporter" if signal == "trace" else "OTLPMetricExporter")
    endpoint = config.otlp_endpoint
    timeout = config.export_timeout_seconds  # bounds each export, retries included
    if endpoint is None:  # the exporter's own default / OTEL_EXPORTER_OTLP_* environment variables
        return factory(timeout=timeout)
    if config.otlp_protocol == "http/protobuf" and urlsplit(endpoint).path in ("", "/"):
        # a collector base URL, like OTEL_EXPORTER_OTLP_ENDPOINT
        endpoint = endpoint.rstrip("/") + ("/v1/traces" if signal == "trace" else "/v1/metrics")
    return factory(endpoint=endpoint, timeout=timeout)


def build_exporter(config: TelemetryConfig) -> SpanExporter | None:
    """The span exporter ``config.exporter`` names (None for ``none``)."""
    if config.exporter == "console":
        return ConsoleSpanExporter(service_name=config.service_name, out=sys.stdout)  # stdout as of now
    if config.exporter == "otlp":
        exporter: SpanExporter = _otlp(config, "trace")
        return exporter
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


def build_resource(config: TelemetryConfig) -> Resource:
    """``service.name`` (and ``service.version`` when configured) over the ``OTEL_RESOURCE_ATTRIBUTES``."""
    attributes = {"service.name": config.service_name}
    if config.service_version:
        attributes["service.version"] = config.service_version
    return Resource.create(attributes)


def build_tracer_provider(
    config: TelemetryConfig | None = None, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """An SDK TracerProvider for ``config`` (resource, sampler, exporter pipeline).

    ``exporter`` replaces the configured one (e.g. an in-memory exporter). Without either (``exporter:
    none``) the provider has no span processor: add your own with ``add_span_processor``.
    """
    config = config or TelemetryConfig()
    provider = TracerProvider(
        resource=build_resource(config), sampler=ParentBased(TraceIdRatioBased(config.sampling_ratio))
    )
    exporter = exporter if exporter is not None else build_exporter(config)
    if exporter is not None:
        provider.add_span_processor(build_span_processor(config, exporter))
    return provider


def build_meter_provider(config: TelemetryConfig, exporter: MetricExporter | None = None) -> MeterProvider:
    """An SDK MeterProvider exporting periodically over OTLP (or to ``exporter``), with tasker's bucket views."""
    reader = PeriodicExportingMetricReader(exporter if exporter is not None else _otlp(config, "metric"))
    return MeterProvider(metric_readers=[reader], resource=build_resource(config))


def _is_set(provider: object) -> bool:
    """Whether a global ``provider`` was set (it is not the API's placeholder or a no-op)."""
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)) and type(
        provider
    ).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")


@dataclass
class AppTelemetry:
    """The telemetry an app set up: the tracer provider in use (installed by it, or the process's own)."""

    provider: trace.TracerProvider
    subscriber: TelemetrySubscriber
    #: The global MeterProvider: the process's own, or the one installed for ``exporter: otlp`` (else None).
    meter_provider: otel_metrics.MeterProvider | None = None
    export_timeout_seconds: float = 5.0
    closed: bool = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span (and metric) now."""
        flushed = self.subscriber.force_flush(timeout_millis)
        flush = getattr(self.meter_provider, "force_flush", None)
        return (bool(flush(timeout_millis)) if callable(flush) else True) and flushed

    def shutdown(self) -> None:
        """End spans left open and export what is queued, within the export timeout (idempotent).

        The global providers themselves shut down at interpreter exit: other code of the process uses them too.
        """
        if self.closed:
            return
        self.closed = True
        self.subscriber.close()
        # A dead collector must not hold the app's shutdown longer than one export timeout: the flush runs in a
        # thread we stop waiting for.
        flushing = threading.Thread(
            target=self.force_flush,
            args=(int(self.export_timeout_seconds * 1000),),
            name="tasker-telemetry-flush",
            daemon=True,
        )
        flushing.start()
        flushing.join(self.export_timeout_seconds)
        if flushing.is_alive():
            logger.warning(
                "telemetry: spans not exported within %gs (collector unreachable?)", self.export_timeout_seconds
            )


def app_telemetry(config: TelemetryConfig, events: EventBus) -> AppTelemetry | None:
    """Install providers (unless the process has its own) and subscribe a TelemetrySubscriber, when exporting."""
    if not config.enabled or config.exporter == "none":
        return None
    provider = trace.get_tracer_provider()
    if _is_set(provider):
        logger.debug("telemetry: using the process's tracer provider %r", provider)
    else:
        provider = build_tracer_provider(config)
        trace.set_tracer_provider(provider)
        logger.debug("telemetry: %s exporter installed, sampling ratio %s", config.exporter, config.sampling_ratio)
    meter_provider: otel_metrics.MeterProvider | None = otel_metrics.get_meter_provider()
    if not _is_set(meter_provider):
        meter_provider = build_meter_provider(config) if config.exporter == "otlp" else None
        if meter_provider is not None:
            otel_metrics.set_meter_provider(meter_provider)
    subscriber = TelemetrySubscriber(provider, propagation=config.propagation, masker=events.masker)
    events.subscribe_subscriber(subscriber)
    return AppTelemetry(provider, subscriber, meter_provider, config.export_timeout_seconds)
