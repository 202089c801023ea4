"""Providers from TelemetryConfig, and the telemetry an app creates and shuts down."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasker import Tasker
from tasker.config import TelemetryConfig
from tasker.errors import ConfigurationError
from tasker.telemetry import TailSamplingProcessor, TelemetrySubscriber, build_tracer_provider
from tasker.telemetry.setup import build_exporter
from tests.support import otlp
from tests.support.handlers import template
from tests.support.otlp import OtlpReceiver
from tests.telemetry.conftest import Traced, new_provider

receiver = pytest.fixture(otlp.receiver)


def processors(provider: Any) -> list[Any]:
    return list(provider._active_span_processor._span_processors)


def test_provider_from_config() -> None:
    config = TelemetryConfig(service_name="orders", service_version="9.9.9", sampling_ratio=0.25)
    provider = build_tracer_provider(config, exporter=InMemorySpanExporter())
    assert provider.resource.attributes["service.name"] == "orders"
    assert provider.resource.attributes["service.version"] == "9.9.9"
    assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    (processor,) = processors(provider)
    assert isinstance(processor, BatchSpanProcessor)
    provider.shutdown()


def test_tail_sampling_wraps_the_batch_processor() -> None:
    config = TelemetryConfig.model_validate(
        {"tail_sampling": {"enabled": True, "keep_ratio": 0.0, "max_traces": 7, "slow_threshold_seconds": 2}}
    )
    provider = build_tracer_provider(config, exporter=InMemorySpanExporter())
    (processor,) = processors(provider)
    assert isinstance(processor, TailSamplingProcessor) and isinstance(processor.downstream, BatchSpanProcessor)
    assert (processor.max_traces, processor.keep_ratio, processor.slow_ns) == (7, 0.0, 2_000_000_000)
    provider.shutdown()


def test_exporter_none_builds_a_provider_without_processors() -> None:
    provider = build_tracer_provider(TelemetryConfig())
    assert processors(provider) == []
    provider.shutdown()


def test_otlp_endpoint_and_protocol() -> None:
    http = build_exporter(TelemetryConfig(exporter="otlp", otlp_endpoint="http://collector:4318"))
    assert http is not None and http._endpoint == "http://collector:4318/v1/traces"  # type: ignore[attr-defined]
    full = build_exporter(TelemetryConfig(exporter="otlp", otlp_endpoint="http://c:4318/custom/path"))
    assert full is not None and full._endpoint == "http://c:4318/custom/path"  # type: ignore[attr-defined]
    grpc = build_exporter(TelemetryConfig(exporter="otlp", otlp_protocol="grpc", otlp_endpoint="http://c:4317"))
    assert grpc is not None and type(grpc).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    for exporter in (http, full, grpc):
        exporter.shutdown()


@pytest.mark.parametrize(
    ("protocol", "module"),
    [
        ("http/protobuf", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
        ("grpc", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
    ],
)
def test_missing_otlp_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, protocol: str, module: str, tmp_path: Any
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # "not installed"
    config = {"telemetry": {"exporter": "otlp", "otlp_protocol": protocol}}
    with pytest.raises(ConfigurationError, match=r"pip install 'tasker-engine\[otlp\]'"):
        Tasker(f"sqlite:///{tmp_path}/t.db", config=config)


def test_app_without_exporter_has_no_telemetry(app: Tasker) -> None:
    assert app.telemetry is None
    assert "TelemetrySubscriber" not in app.events.subscribers("step.before_handle")


def test_disabled_telemetry_subscribes_nothing(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"telemetry": {"enabled": False, "exporter": "console"}})
    assert app.telemetry is None


def test_app_installs_its_provider_as_the_global_one_and_flushes_on_shutdown(
    make_app: Callable[..., Tasker], capsys: pytest.CaptureFixture[str]
) -> None:
    from opentelemetry import trace

    app = make_app({"telemetry": {"exporter": "console", "service_name": "orders-svc"}})
    assert app.telemetry is not None
    assert trace.get_tracer_provider() is app.telemetry.provider  # installed: instrumentations share it
    assert app.events.subscribers("step.before_handle") == ["TelemetrySubscriber"]
    app.register_task_template(template("diamond"))
    from tasker import TaskRequest

    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"password": "hunter2"}))
    assert app.run_until_done(task.task_id) == "complete"
    app.shutdown()
    app.shutdown()  # idempotent
    out = capsys.readouterr().out
    assert out.count('"name": "tasker.step.execution"') == 4 and '"service.name": "orders-svc"' in out
    assert "hunter2" not in out


def test_an_existing_global_provider_is_used_and_nothing_is_added(
    make_app: Callable[..., Tasker], receiver: OtlpReceiver
) -> None:
    from opentelemetry import trace

    provider, exporter = new_provider()
    trace.set_tracer_provider(provider)
    before = processors(provider)
    app = make_app({"telemetry": {"exporter": "otlp", "otlp_endpoint": receiver.url}})
    assert app.telemetry is not None and app.telemetry.provider is provider
    assert processors(provider) == before  # no exporter of tasker's added to the user's pipeline
    app.register_task_template(template("diamond"))
    from tasker import TaskRequest

    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("tasker.step.execution") == 4 and "tasker.task.execution" in names
    scopes = {(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in exporter.get_finished_spans()}
    from tasker import __version__

    assert scopes == {("tasker", __version__)}


def test_app_shutdown_leaves_a_user_provider_alone(make_traced: Callable[..., Traced]) -> None:
    traced = make_traced()
    traced.run(template("diamond"))
    traced.app.shutdown()
    traced.provider.get_tracer("after").start_span("still alive").end()
    assert traced.spans("still alive")  # the provider was not shut down by the app


def test_global_provider_is_looked_up_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    subscriber = TelemetrySubscriber()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    assert subscriber.tracer() is None  # nothing set yet: no spans, no error
    provider, _ = new_provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert subscriber.tracer() is not None and subscriber.tracer_provider is provider
    provider.shutdown()


def test_invalid_propagation_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="parent"):
        TelemetrySubscriber(propagation="sideways")  # type: ignore[arg-type]


def test_tail_sampling_decision_wait_comes_from_config() -> None:
    from tasker.config import TelemetryConfig
    from tasker.telemetry import TailSamplingProcessor
    from tasker.telemetry.setup import build_tracer_provider

    config = TelemetryConfig(exporter="console", tail_sampling={"enabled": True, "decision_wait_seconds": 7.5})
    provider = build_tracer_provider(config)
    processors = provider._active_span_processor._span_processors  # the SDK keeps them here
    (tail,) = [p for p in processors if isinstance(p, TailSamplingProcessor)]
    assert tail.decision_wait == 7.5
    provider.shutdown()
