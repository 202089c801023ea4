"""TelemetrySubscriber can be declared in a subscriptions YAML file like any subscriber."""

from __future__ import annotations

from pathlib import Path

from tasker import Tasker
from tasker.telemetry import TelemetrySubscriber


def test_telemetry_subscriber_from_yaml(app: Tasker, tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(
        "subscriptions:\n"
        "  tracing:\n"
        "    class: tasker.telemetry:TelemetrySubscriber\n"
        "    config:\n"
        "      propagation: link\n"
    )
    (subscriber,) = app.load_subscriptions(path)
    assert isinstance(subscriber, TelemetrySubscriber)
    assert subscriber.name == "tracing"
    assert subscriber.propagation == "link"
    assert "tracing" in app.events.subscribers("task.completed")
