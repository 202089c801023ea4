"""The standard OTEL_* environment wins over tasker's telemetry defaults; tasker's version is the scope's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tasker import Tasker, TaskRequest, __version__
from tasker.config import TelemetryConfig
from tests.support import otlp
from tests.support.handlers import template
from tests.support.otlp import OtlpReceiver

receiver = pytest.fixture(otlp.receiver)


def test_otel_environment_names_the_service_and_the_endpoint(
    make_app: Callable[..., Tasker], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.version=7.1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)  # no otlp_endpoint in tasker's config
    app = make_app({"telemetry": {"exporter": "otlp"}})
    app.register_task_template(template("fails", {"a": []}, {"a": {"fail_times": 1, "error": "permanent"}}))
    task = app.create_task(TaskRequest(name="fails", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "error"
    assert app.telemetry is not None and app.telemetry.force_flush()
    receiver.wait_for(lambda: bool(receiver.received("tasker.task.execution")))
    (step,) = receiver.received("tasker.step.execution")
    assert step.resource["service.name"] == "billing"
    assert step.resource["deployment.environment"] == "prod"
    assert step.resource["service.version"] == "7.1"  # the user's service, not tasker's version
    assert step.scope == ("tasker", __version__)
    assert step.attributes["error.type"] == "tasker.errors.PermanentError"  # fully qualified


def test_explicit_config_still_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    assert TelemetryConfig(service_name="orders").service_name == "orders"
    assert TelemetryConfig().service_name == "billing"


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio"),
    [
        (None, None, 1.0),
        ("always_off", None, 0.0),
        ("parentbased_always_off", None, 0.0),
        ("traceidratio", "0.25", 0.25),
        ("parentbased_traceidratio", "0.5", 0.5),
        ("parentbased_traceidratio", "nonsense", 1.0),
        ("always_on", "0.1", 1.0),
    ],
)
def test_sampler_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, sampler: str | None, arg: str | None, ratio: float
) -> None:
    for name, value in (("OTEL_TRACES_SAMPLER", sampler), ("OTEL_TRACES_SAMPLER_ARG", arg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert TelemetryConfig().sampling_ratio == ratio


def test_a_sampler_off_in_the_environment_exports_nothing(
    make_app: Callable[..., Tasker], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    app = make_app({"telemetry": {"exporter": "otlp", "otlp_endpoint": receiver.url}})
    app.register_task_template(template("diamond"))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    assert app.telemetry is not None and app.telemetry.force_flush()
    assert receiver.received() == []


def test_protocol_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    assert TelemetryConfig().otlp_protocol == "grpc"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift")
    with pytest.raises(ValueError, match="otlp_protocol"):
        TelemetryConfig()
