"""``tasker generate subscriber``: the generated code lints, type-checks, passes its tests and handles real runs."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tasker import Tasker, TaskRequest
from tasker.events import BaseSubscriber, EventCatalog
from tests.cli.support import (
    FAST,
    ORDER_CONTEXT,
    ORDER_TEMPLATE,
    assert_one_line_error,
    assert_pytest_passes,
    invoke,
    load_module,
    ruff_failures,
)


def run_order_task(tmp_path: Path, subscriber_factory: Any) -> tuple[Tasker, BaseSubscriber]:
    """Run the example order workflow (charge_payment fails once, then succeeds) with a subscriber."""
    app = Tasker(f"sqlite:///{tmp_path}/run.db", config=FAST)
    app.migrate()
    app.load_task_templates(ORDER_TEMPLATE)
    subscriber = subscriber_factory(app)
    app.subscribe(subscriber)
    task = app.create_task(
        TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=ORDER_CONTEXT)
    )
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    return app, subscriber


def test_generates_a_subscriber_and_a_passing_test(project: Path) -> None:
    result = invoke("generate", "subscriber", "order_alerts", "--events", "task.completed,step.failed")
    assert result.exit_code == 0, result.output
    module = project / "subscribers" / "order_alerts_subscriber.py"
    test = project / "tests" / "subscribers" / "test_order_alerts_subscriber.py"
    assert f"created     {module.relative_to(project)}" in result.stdout
    assert "app.subscribe(OrderAlertsSubscriber())" in result.stdout
    assert (project / "conftest.py").exists()

    source = module.read_text()
    assert "class OrderAlertsSubscriber(BaseSubscriber):" in source
    assert 'subscribe_to = (\n        "task.completed",\n        "step.failed",\n    )' in source
    tree = ast.parse(source)
    methods = {
        node.name: node
        for cls in tree.body
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef)
    }
    assert {"handle_task_completed", "handle_step_failed"} <= methods.keys()
    catalog = EventCatalog()
    for event, method in (("task.completed", "handle_task_completed"), ("step.failed", "handle_step_failed")):
        docstring = ast.get_docstring(methods[method]) or ""
        assert event in docstring
        for field in catalog.spec(event).field_names:  # required and optional fields alike
            assert field in docstring, (event, field)
        assert ast.unparse(methods[method].args.args[1].annotation) == "Event"  # type: ignore[arg-type]
        assert ast.unparse(methods[method].returns) == "None"  # type: ignore[arg-type]
    assert "tmp_path" in test.read_text() and "example_payload()" in test.read_text()

    assert ruff_failures(project) == []
    assert_pytest_passes(project, 1)


def test_metrics_subscriber_records_valid_prometheus_metrics(project: Path) -> None:
    result = invoke("generate", "subscriber", "OrderMetrics", "--metrics")
    assert result.exit_code == 0, result.output
    source = (project / "subscribers" / "order_metrics_subscriber.py").read_text()
    for event in ("task.completed", "task.failed", "step.completed", "step.failed"):  # the default events
        assert f'"{event}",' in source
    for name in ("order_metrics_completions_total", "order_metrics_errors_total", "order_metrics_duration_seconds"):
        assert f'"{name}"' in source
    test_source = (project / "tests" / "subscribers" / "test_order_metrics_subscriber.py").read_text()
    assert 'render("prometheus")' in test_source
    assert "app.subscribe(OrderMetricsSubscriber(app.metrics))" in result.stdout

    assert ruff_failures(project) == []
    assert_pytest_passes(project, 1)


def test_generated_subscriber_handles_a_real_run(project: Path, tmp_path: Path) -> None:
    events = "task.completed,step.completed,step.failed,step.retry_requested"
    assert invoke("generate", "subscriber", "watch", "--events", events).exit_code == 0
    module = load_module(project / "subscribers" / "watch_subscriber.py")

    app, subscriber = run_order_task(tmp_path, lambda app: module.WatchSubscriber())
    try:
        handled = [event.name for event in subscriber.handled]  # type: ignore[attr-defined]
        assert handled.count("task.completed") == 1
        assert handled.count("step.completed") == 5
        assert handled.count("step.failed") == 1
        assert handled.count("step.retry_requested") == 1
        failed = next(e for e in subscriber.handled if e.name == "step.failed")  # type: ignore[attr-defined]
        assert failed["step_name"] == "charge_payment"
        assert failed["error_message"] == "payment gateway timed out"
    finally:
        app.shutdown()


def test_generated_metrics_subscriber_counts_a_real_run(project: Path, tmp_path: Path) -> None:
    assert invoke("generate", "subscriber", "shop", "--metrics").exit_code == 0
    module = load_module(project / "subscribers" / "shop_subscriber.py")

    app, _ = run_order_task(tmp_path, lambda app: module.ShopSubscriber(app.metrics))
    try:
        registry = app.metrics.registry

        def total(sample_name: str, **labels: str) -> float:
            return sum(
                s.value
                for family in registry.collect()
                for s in family.samples
                if s.name == sample_name and labels.items() <= s.labels.items()
            )

        assert total("shop_completions_total", event="step.completed") == 5
        assert total("shop_completions_total", event="task.completed") == 1
        assert total("shop_errors_total", event="step.failed") == 1
        assert total("shop_errors_total", event="task.failed") == 0
        assert total("shop_duration_seconds_count", event="step.completed") == 5
        assert total("shop_duration_seconds_count", event="task.completed") == 1
        exposition = app.metrics.render("prometheus")
        assert 'shop_completions_total{event="step.completed"} 5.0' in exposition
        assert "# TYPE shop_duration_seconds histogram" in exposition
        assert 'shop_errors_total{error_type="other",event="step.failed"} 1.0' in exposition
    finally:
        app.shutdown()


def test_custom_directories(tmp_path: Path) -> None:
    root = tmp_path / "app"
    result = invoke(
        "generate", "subscriber", "audit", "--events", "task.failed",
        "--directory", str(root / "src_pkg" / "subs"), "--tests-directory", str(root / "tests" / "unit"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    test_source = (root / "tests" / "unit" / "test_audit_subscriber.py").read_text()
    assert "from src_pkg.subs.audit_subscriber import AuditSubscriber" in test_source
    assert (root / "conftest.py").exists()
    assert ruff_failures(root) == []
    assert_pytest_passes(root, 1, safe_path=True)  # imports work through the generated conftest.py alone


@pytest.mark.parametrize(
    ("events", "fragments"),
    [
        ("task.complete", ("unknown event 'task.complete'", "task.completed")),
        ("task.completed,step.faild", ("unknown event 'step.faild'", "step.failed")),
        ("nothing.like.it", ("unknown event 'nothing.like.it'", "tasker events list")),
    ],
)
def test_unknown_events_are_refused_with_close_matches(project: Path, events: str, fragments: tuple[str, ...]) -> None:
    result = invoke("generate", "subscriber", "alerts", "--events", events)
    assert_one_line_error(result, *fragments)
    assert not any(project.iterdir())  # nothing written


@pytest.mark.parametrize("name", ["9lives", "order-alerts", "order alerts", "class", "Subscriber", "_private"])
def test_bad_names_are_refused(project: Path, name: str) -> None:
    result = invoke("generate", "subscriber", name)
    assert_one_line_error(result, "invalid subscriber name")
    assert not any(project.iterdir())


def test_names_are_normalised(project: Path) -> None:
    assert invoke("generate", "subscriber", "HTTPAlertsSubscriber").exit_code == 0
    source = (project / "subscribers" / "http_alerts_subscriber.py").read_text()
    assert "class HttpAlertsSubscriber(BaseSubscriber):" in source
    assert 'subscribe_to = (\n        "task.completed",\n        "task.failed",\n    )' in source  # default events


def test_existing_files_are_kept_unless_forced(project: Path) -> None:
    assert invoke("generate", "subscriber", "alerts").exit_code == 0
    module = project / "subscribers" / "alerts_subscriber.py"
    module.write_text("# my edits\n")

    result = invoke("generate", "subscriber", "alerts", "--events", "task.failed")
    line = assert_one_line_error(result, "alerts_subscriber.py", "--force")
    assert "refusing to overwrite" in line
    assert module.read_text() == "# my edits\n"

    (project / "conftest.py").write_text('"""My conftest."""\n')
    result = invoke("generate", "subscriber", "alerts", "--events", "task.failed", "--force")
    assert result.exit_code == 0, result.output
    assert "overwritten" in result.stdout and "kept        conftest.py" in result.stdout
    assert "handle_task_failed" in module.read_text()
    assert (project / "conftest.py").read_text() == '"""My conftest."""\n'  # never overwritten


def test_a_directory_that_is_not_importable_is_refused(project: Path) -> None:
    result = invoke("generate", "subscriber", "alerts", "--directory", "my-subscribers")
    assert_one_line_error(result, "--directory", "'my-subscribers' is not a valid Python module name")
