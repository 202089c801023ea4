"""Every API route and its errors against the real ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tasker import Tasker
from tasker.errors import ConfigurationError
from tasker.executors import claim_next_task
from tasker.models import Task
from tasker.web import create_app
from tests.web.conftest import TestClient, create, register


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the one error shape with ``status`` and ``code``; the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return dict(body["error"])


def task_count(app: Tasker) -> int:
    with app.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Task)) or 0)


def test_create_task_returns_201_with_the_task_and_its_steps(client: TestClient, tasker_app: Tasker) -> None:
    response = client.post(
        "/api/v1/tasks",
        json={"name": "diamond", "version": "1.0.0", "context": {"order_id": 7}, "initiator": "api-test",
              "tags": ["web"], "reason": "because"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    task = response.json()["task"]
    assert task["status"] == "pending" and task["initiator"] == "api-test" and task["tags"] == ["web"]
    assert task["source_system"] == "unknown" and task["steps_total"] == 4 and task["steps_complete"] == 0
    assert [s["name"] for s in task["steps"]] == ["a", "b", "c", "d"]
    assert task["steps"][3]["depends_on"] == ["b", "c"]
    assert task["created_at"].endswith("Z")
    assert tasker_app.get_task(task["task_id"]).context == {"order_id": 7}


def test_get_task_after_it_ran(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app)
    assert tasker_app.run_until_done(task_id) == "complete"
    task = client.get(f"/api/v1/tasks/{task_id}").json()["task"]
    assert task["status"] == "complete" and task["steps_complete"] == 4
    step = task["steps"][0]
    assert step["status"] == "complete" and step["attempts"] == 1 and step["results"] == {"step": "a", "attempt": 1}
    assert step["duration_seconds"] is not None and step["duration_seconds"] >= 0
    assert step["completed_at"] >= step["started_at"]


def test_create_task_errors_write_nothing(client: TestClient, tasker_app: Tasker) -> None:
    details = error(client.post("/api/v1/tasks", json={"name": "nope"}), 404, "template_not_found")
    assert "nope" in details["message"]
    bad_context = client.post(
        "/api/v1/tasks", json={"name": "ordered", "version": "1.0.0", "context": {"order_id": "x"}}
    )
    assert error(bad_context, 422, "validation_error")["details"]["field"] == "order_id"
    missing_key = client.post("/api/v1/tasks", json={"name": "ordered", "version": "1.0.0", "context": {}})
    assert error(missing_key, 422, "validation_error")["details"] == {
        "field": "order_id",
        "errors": ["context.order_id: 'order_id' is a required property"],
    }
    missing_name = error(client.post("/api/v1/tasks", json={"version": "1.0.0"}), 422, "validation_error")
    assert missing_name["details"][0]["field"] == "name"
    unknown_key = error(
        client.post("/api/v1/tasks", json={"name": "diamond", "colour": "red"}), 422, "validation_error"
    )
    assert unknown_key["details"][0]["field"] == "colour"
    not_json = client.post("/api/v1/tasks", content=b"{", headers={"content-type": "application/json"})
    error(not_json, 422, "validation_error")
    assert task_count(tasker_app) == 0


def test_unknown_ids_are_404_on_every_route(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app)
    other = create(tasker_app)
    foreign_step = tasker_app.get_task(other).steps[0].step_id
    for method, path in [
        ("get", "/api/v1/tasks/999999"),
        ("get", "/api/v1/tasks/999999/trace"),
        ("post", "/api/v1/tasks/999999/cancel"),
        ("get", "/api/v1/tasks/999999/steps/1"),
        ("get", f"/api/v1/tasks/{task_id}/steps/999999"),
        ("get", f"/api/v1/tasks/{task_id}/steps/{foreign_step}"),
        ("post", f"/api/v1/tasks/{task_id}/steps/{foreign_step}/resolve"),
        ("post", "/api/v1/tasks/999999/steps/1/resolve"),
        ("get", "/api/v1/nothing-here"),
    ]:
        error(getattr(client, method)(path), 404, "not_found")
    error(client.get("/api/v1/tasks/abc"), 422, "validation_error")
    error(client.delete(f"/api/v1/tasks/{task_id}"), 405, "method_not_allowed")


def test_get_step(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app)
    step_id = tasker_app.get_task(task_id).step("b").step_id
    step = client.get(f"/api/v1/tasks/{task_id}/steps/{step_id}").json()["step"]
    assert step["step_id"] == step_id and step["name"] == "b" and step["depends_on"] == ["a"]
    assert step["status"] == "pending" and step["retry_limit"] == 3 and step["retryable"] is True


def test_cancel_then_conflict(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app)
    task = client.post(f"/api/v1/tasks/{task_id}/cancel").json()["task"]
    assert task["status"] == "cancelled" and {s["status"] for s in task["steps"]} == {"cancelled"}
    error(client.post(f"/api/v1/tasks/{task_id}/cancel"), 409, "conflict")
    done = create(tasker_app)
    tasker_app.run_until_done(done)
    error(client.post(f"/api/v1/tasks/{done}/cancel"), 409, "conflict")
    assert tasker_app.get_task(done).status == "complete"


def test_resolve_a_failed_step_revives_the_task(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app, "failing")
    assert tasker_app.run_until_done(task_id) == "error"
    view = tasker_app.get_task(task_id)
    failed = view.step("boom").step_id
    task = client.post(f"/api/v1/tasks/{task_id}/steps/{failed}/resolve").json()["task"]
    assert task["status"] == "pending"
    assert {s["name"]: s["status"] for s in task["steps"]}["boom"] == "resolved_manually"
    error(client.post(f"/api/v1/tasks/{task_id}/steps/{failed}/resolve"), 409, "conflict")


def test_masking_of_context_results_and_error_text(client: TestClient, tasker_app: Tasker) -> None:
    created = client.post(
        "/api/v1/tasks",
        json={"name": "leaky", "version": "1.0.0", "context": {"user": "bob", "password": "hunter2",
                                                               "nested": [{"api_key": "k-1"}]}},
    ).json()["task"]  # fmt: skip
    assert created["context"] == {"user": "bob", "password": "[FILTERED]", "nested": [{"api_key": "[FILTERED]"}]}
    tasker_app.run_until_done(created["task_id"])
    failing = create(tasker_app, "failing", {"token": "t-1"})
    tasker_app.run_until_done(failing)
    leaky = client.get(f"/api/v1/tasks/{created['task_id']}").json()["task"]
    results = leaky["steps"][0]["results"]
    assert results["api_key"] == "[FILTERED]" and results["note"] == "login with password=[FILTERED] worked"
    task = client.get(f"/api/v1/tasks/{failing}").json()["task"]
    boom = task["steps"][0]
    for text in (task["last_error"], boom["last_error"], boom["results"]["error"], boom["results"]["backtrace"]):
        assert "hunter2" not in text and "s3cret" not in text and "[FILTERED]" in text
    assert task["context"] == {"token": "[FILTERED]"}
    trace = client.get(f"/api/v1/tasks/{failing}/trace").json()
    errors = [s["error"] for s in trace["spans"] if s["error"]]
    assert errors and all("hunter2" not in e for e in errors)
    everything = client.get(f"/api/v1/tasks/{failing}").text + client.get(f"/api/v1/tasks/{created['task_id']}").text
    assert "hunter2" not in everything and "sk-live-123" not in everything and "s3cret" not in everything


def test_trace_has_the_enqueue_task_and_step_attempt_spans(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app)
    tasker_app.run_until_done(task_id)
    trace = client.get(f"/api/v1/tasks/{task_id}/trace").json()
    stored = tasker_app.get_task(task_id)
    assert trace["task_id"] == stored.task_id and len(trace["trace_id"]) == 32
    enqueue, task, *steps = trace["spans"]
    assert enqueue["kind"] == "enqueue" and enqueue["parent_span_id"] is None
    assert task["kind"] == "task" and task["parent_span_id"] == enqueue["span_id"] and task["status"] == "complete"
    assert steps[0]["step_name"] == "a" and {s["step_name"] for s in steps} == {"a", "b", "c", "d"}
    assert all(
        s["parent_span_id"] == task["span_id"] and s["attempt"] == 1 and s["status"] == "complete" for s in steps
    )
    assert len({s["span_id"] for s in trace["spans"]}) == len(trace["spans"])
    assert all(s["end"] >= s["start"] for s in steps)


def test_templates_list_and_detail(client: TestClient) -> None:
    templates = client.get("/api/v1/templates").json()["templates"]
    assert {"namespace": "ops", "name": "chain", "version": "1.1.0", "description": None, "step_count": 3} in templates
    latest = client.get("/api/v1/templates/ops/chain").json()
    assert latest["version"] == "1.1.0"
    older = client.get("/api/v1/templates/ops/chain", params={"version": "1.0.0"}).json()
    assert older["step_count"] == 2
    diamond = client.get("/api/v1/templates/default/diamond").json()
    assert diamond["graph"] == {
        "nodes": ["a", "b", "c", "d"],
        "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]],
        "levels": {"a": 0, "b": 1, "c": 1, "d": 2},
    }
    assert diamond["mermaid"].startswith("flowchart TD") and "b --> d" in diamond["mermaid"]
    assert diamond["steps"][3] == {
        "name": "d", "description": None, "handler": "tests.support.handlers:Record", "depends_on": ["b", "c"],
        "retry_limit": 3, "retryable": True, "skippable": False, "timeout_seconds": None,
    }  # fmt: skip
    error(client.get("/api/v1/templates/ops/missing"), 404, "template_not_found")
    error(client.get("/api/v1/templates/ops/chain", params={"version": "9.9.9"}), 404, "template_not_found")


def test_events_catalog(client: TestClient, tasker_app: Tasker) -> None:
    events = {e["name"]: e for e in client.get("/api/v1/events").json()["events"]}
    assert set(events) == set(tasker_app.events.catalog.names())
    completed = events["task.completed"]
    assert completed["category"] == "task" and completed["description"]
    assert "task_id" in completed["payload_schema"]["required"]


def test_stats(client: TestClient, tasker_app: Tasker) -> None:
    ok = [create(tasker_app) for _ in range(3)]
    bad = create(tasker_app, "failing")
    create(tasker_app)  # still pending
    for task_id in [*ok, bad]:
        tasker_app.run_until_done(task_id)
    stats = client.get("/api/v1/stats", params={"period": "1h"}).json()
    assert stats["period_seconds"] == 3600
    assert stats["counts_by_status"] == {"pending": 1, "in_progress": 0, "complete": 3, "error": 1,
                                               "cancelled": 0, "resolved_manually": 0}  # fmt: skip
    assert sum(h["completed"] for h in stats["throughput_per_hour"]) == 3
    assert sum(h["failed"] for h in stats["throughput_per_hour"]) == 1
    assert stats["completion_rate"] == 0.75 and stats["error_rate"] == 0.25
    assert stats["task_duration"]["count"] == 3 and stats["step_duration"]["count"] == 12
    assert stats["task_duration"]["p50_seconds"] <= stats["task_duration"]["p95_seconds"]
    assert {(s["step_name"], s["dependent_system"]) for s in stats["slowest_steps"]} == {(n, "unknown") for n in "abcd"}
    assert stats["top_error_classes"] == [{"error_class": "PermanentError", "count": 1}]
    for period in ("x", "0h", "91d", "-1h"):
        assert error(client.get("/api/v1/stats", params={"period": period}), 422, "validation_error")["message"]


def test_health_endpoints(client: TestClient, tasker_app: Tasker) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert {name: c["status"] for name, c in ready.json()["checks"].items()} == {"database": "ok", "schema": "ok"}
    create(tasker_app)
    status = client.get("/health/status").json()
    assert status["counts_by_status"]["pending"] == 1 and status["oldest_pending_age_seconds"] >= 0
    assert status["workers"] == []
    assert claim_next_task(tasker_app, "worker-7") is not None
    assert client.get("/health/status").json()["workers"] == ["worker-7"]


def test_metrics_exposition(client: TestClient, tasker_app: Tasker) -> None:
    tasker_app.run_until_done(create(tasker_app))
    response = client.get("/metrics", headers={"accept-encoding": "identity"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    created = families["tasker_tasks_created"].samples
    assert any(s.labels.get("task") == "diamond" and s.value == 1 for s in created)
    zipped = client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    om = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")
    assert zipped.text == response.text  # httpx decodes the gzip body


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/tasks", "/api/v1/tasks/{task_id}", "/api/v1/tasks/{task_id}/cancel",
        "/api/v1/tasks/{task_id}/steps/{step_id}", "/api/v1/tasks/{task_id}/steps/{step_id}/resolve",
        "/api/v1/tasks/{task_id}/trace", "/api/v1/templates", "/api/v1/templates/{namespace}/{name}",
        "/api/v1/events", "/api/v1/stats", "/health/live", "/health/ready", "/health/status",
    ):  # fmt: skip
        assert path in paths, path
    assert "traceparent" in {p["name"] for p in paths["/api/v1/tasks"]["post"]["parameters"]}
    assert "ErrorResponse" in spec["components"]["schemas"]
    for path, operations in paths.items():  # every body is a model: the spec describes every answer
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert response["content"]["application/json"]["schema"], (method, path, status)
    assert client.get("/docs").status_code == 200


def test_trace_url_from_the_configuration(make_app: Callable[..., Tasker]) -> None:
    app = register(make_app({"web": {"trace_url_template": "https://jaeger.example/trace/{trace_id}"}}))
    task_id = create(app)
    trace = TestClient(create_app(app)).get(f"/api/v1/tasks/{task_id}/trace").json()
    assert trace["trace_url"] == f"https://jaeger.example/trace/{trace['trace_id']}"
    with pytest.raises(ConfigurationError, match="trace_url_template"):
        make_app({"web": {"trace_url_template": "https://jaeger.example/{span_id}"}})
