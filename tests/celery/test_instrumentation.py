"""The deployment guide's recipe: ``telemetry.exporter: otlp`` plus ``CeleryInstrumentor().instrument()`` in the
factory. The instrumentation's spans reach the same OTLP endpoint as tasker's, in the task's trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasker import TaskRequest
from tests.celery.conftest import CeleryHarness, merge_config, wait_for
from tests.support import otlp
from tests.support.handlers import template
from tests.support.otlp import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    yield from otlp.receiver()


@pytest.mark.redis
def test_celery_instrumentation_exports_through_the_provider_tasker_installed(
    celery_harness: CeleryHarness, receiver: OtlpReceiver
) -> None:
    tmpl = template("diamond")
    config = merge_config({"telemetry": {"exporter": "otlp", "otlp_endpoint": receiver.url}})
    celery_harness.start_worker(
        [tmpl], config=config, env={"TASKER_TEST_OTEL_CELERY": "global", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    )
    app = celery_harness.producer([tmpl])
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    wait_for(lambda: app.get_task(task.task_id).status == "complete", 60, "task complete")
    wait_for(lambda: bool(receiver.received("tasker.task.execution")), 20, "task span exported")
    celery_harness.workers[0].wait_idle()
    celery_harness.workers[0].stop()  # flush what the pool processes still buffer
    (task_span,) = receiver.received("tasker.task.execution")
    runs = [s for s in receiver.received() if s.name.startswith("run/tasker.")]
    assert runs, [s.name for s in receiver.received()]
    assert {s.scope[0] for s in runs} == {"opentelemetry.instrumentation.celery"}
    assert all(s.trace_id == task_span.trace_id for s in runs)  # the task's trace, from the message headers
