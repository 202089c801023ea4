"""A dead OTLP collector cannot hold ``app.shutdown()`` longer than the export timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker import Tasker, TaskRequest
from tasker.config import TelemetryConfig
from tests.support.handlers import template


@pytest.fixture
def silent_collector() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a hung collector)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_the_default_export_timeout_is_at_most_five_seconds() -> None:
    assert TelemetryConfig().export_timeout_seconds <= 5


def test_shutdown_with_a_hung_collector_returns_within_the_export_timeout(
    silent_collector: str, tmp_path: Path
) -> None:
    app = Tasker(
        f"sqlite:///{tmp_path}/tasker.db",
        config={"telemetry": {"exporter": "otlp", "otlp_endpoint": silent_collector, "export_timeout_seconds": 1}},
    )
    app.migrate()
    app.register_task_template(template("diamond"))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    started = time.monotonic()
    app.shutdown()
    assert time.monotonic() - started < 4  # one bounded flush and one bounded final export, not 30 s
