"""examples/ruby_style: Ruby-dialect workflows run unchanged, through the scenarios the Ruby blog specs test."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from tasker.examples.ruby_style import HANDLER_ALIASES, TEMPLATES

from tasker import Tasker, TaskRequest
from tasker.errors import ValidationError
from tasker.events import Event
from tests.support.http import serving

BASKET = {
    "basket": [{"sku": "mug", "quantity": 2, "unit_price": 12.5}, {"sku": "tea", "quantity": 1, "unit_price": 5.0}],
    "card": {"token": "tok_1", "amount": 30.0},
    "shopper": {"email": "ada@example.com", "loyalty": "basic"},
}
CHECKOUT_STEPS = ["check_basket", "authorize_card", "reserve_stock", "record_order", "email_receipt"]


@pytest.fixture
def ruby_app(make_app: Callable[..., Tasker]) -> Tasker:
    """An app configured with the examples' handler aliases, test environment."""
    return make_app({"environment": "test", "templates": {"handler_aliases": HANDLER_ALIASES}})


def _run(app: Tasker, namespace: str, name: str, version: str, context: dict[str, Any]) -> tuple[int, str]:
    task = app.create_task(TaskRequest(namespace=namespace, name=name, version=version, context=context))
    return task.task_id, app.run_until_done(task.task_id, timeout=30)


def _attempts(app: Tasker, task_id: int) -> dict[str, tuple[str, int]]:
    return {s.name: (s.status, s.attempts) for s in app.get_task(task_id).steps}


# -- checkout chain ---------------------------------------------------------------------------------------------


def _checkout(app: Tasker, **context: Any) -> tuple[int, str]:
    app.load_task_templates(TEMPLATES / "checkout.yaml")
    return _run(app, "storefront", "place_order", "1.0.0", {**copy.deepcopy(BASKET), **context})


def test_checkout_completes_in_order_with_an_order_annotation(ruby_app: Tasker) -> None:
    task_id, status = _checkout(ruby_app)
    assert status == "complete"
    task = ruby_app.get_task(task_id)
    assert [s.name for s in task.steps] == CHECKOUT_STEPS
    assert all(s.attempts == 1 for s in task.steps)
    assert task.step("record_order").results == {"order_number": f"SO-{task_id}", "total": 30.0}
    assert [(a.annotation_type, a.data) for a in task.annotations] == [
        ("order_summary", {"order_number": f"SO-{task_id}", "total": 30.0})
    ]


def test_rush_and_gold_orders_are_enriched_by_the_task_handler(ruby_app: Tasker) -> None:
    task_id, status = _checkout(ruby_app, delivery="rush", shopper={"email": "g@example.com", "loyalty": "gold"})
    assert status == "complete"
    task = ruby_app.get_task(task_id)
    assert task.context["rush_handling"]["warehouse_priority"] == "high"
    assert task.context["gold_benefits"] == {"free_shipping": True, "points_multiplier": 2}
    assert task.step("reserve_stock").results["priority"] == "high"
    assert task.step("email_receipt").retry_limit == 2
    assert task.step("email_receipt").results == {"sent_to": "g@example.com", "gold": True}


def test_checkout_recovers_from_one_failure(ruby_app: Tasker) -> None:
    task_id, status = _checkout(ruby_app, simulate={"authorize_card": {"fail_times": 1}})
    assert status == "complete"
    assert _attempts(ruby_app, task_id)["authorize_card"] == ("complete", 2)


def test_checkout_fails_once_a_step_exhausts_its_retry_limit(ruby_app: Tasker) -> None:
    task_id, status = _checkout(ruby_app, simulate={"record_order": {"fail_times": 9}})
    assert status == "error"
    attempts = _attempts(ruby_app, task_id)
    assert attempts["record_order"] == ("error", 3)  # its default_retry_limit
    assert attempts["email_receipt"] == ("pending", 0)
    assert ruby_app.get_task(task_id).annotations == []  # update_annotations runs only on completion


def test_checkout_permanent_error_is_not_retried(ruby_app: Tasker) -> None:
    task_id, status = _checkout(ruby_app, card={"token": "tok_1", "amount": 99.0})
    assert status == "error"
    task = ruby_app.get_task(task_id)
    assert (task.step("check_basket").status, task.step("check_basket").attempts) == ("error", 1)
    assert task.step("check_basket").results["error_code"] == "AMOUNT_MISMATCH"
    assert all(s.status == "pending" for s in task.steps[1:])


def test_checkout_context_is_validated_against_the_schema(ruby_app: Tasker) -> None:
    ruby_app.load_task_templates(TEMPLATES / "checkout.yaml")
    with pytest.raises(ValidationError, match="shopper"):
        ruby_app.create_task(TaskRequest(namespace="storefront", name="place_order", version="1.0.0",
                                         context={"basket": BASKET["basket"], "card": BASKET["card"]}))  # fmt: skip


# -- the 8-step pipeline ------------------------------------------------------------------------------------------


def _pipeline(app: Tasker, **context: Any) -> tuple[int, str, list[Event]]:
    app.load_task_templates(TEMPLATES / "analytics.yaml")
    received: list[Event] = []
    for name in ("extraction_started", "extraction_finished", "milestone_reached"):
        app.events.subscribe(f"reporting.{name}", received.append)
    task_id, status = _run(app, "reporting", "nightly_report", "2.0.0", {"day": "2025-07-01", **context})
    return task_id, status, received


def test_pipeline_runs_three_roots_two_joins_and_publishes_its_events(ruby_app: Tasker) -> None:
    task_id, status, received = _pipeline(ruby_app)
    assert status == "complete"
    task = ruby_app.get_task(task_id)
    assert task.step("compile_report").results == {"total": (1200 + 300) + (1200 + 80)}
    assert task.step("pull_catalog").results["source"] == "catalog_api"  # the step's own handler_config
    assert task.step("pull_sales").results == {"rows": 1200, "source": "replica", "batch_size": 500}
    names = [e.name for e in received]
    assert names.count("reporting.extraction_started") == 3
    assert names.count("reporting.extraction_finished") == 3
    assert names[-1] == "reporting.milestone_reached"
    done = {s.name: s.processed_at for s in task.steps}
    joins = {"score_accounts": ("pull_sales", "pull_accounts"), "compile_report": ("score_accounts", "score_catalog")}
    for join, parents in joins.items():
        assert all(done[p] <= done[join] for p in parents)  # type: ignore[operator]
    assert [s.parent_names for s in task.steps[:3]] == [(), (), ()]  # three roots


@pytest.mark.parametrize("stage", ["pull_accounts", "score_catalog", "compile_report", "refresh_board", "notify_team"])
def test_pipeline_recovers_from_a_failure_in_each_stage(ruby_app: Tasker, stage: str) -> None:
    task_id, status, _ = _pipeline(ruby_app, simulate={stage: {"fail_times": 1}})
    assert status == "complete"
    assert _attempts(ruby_app, task_id)[stage] == ("complete", 2)


def test_pipeline_extraction_failure_publishes_an_undeclared_event_without_breaking(ruby_app: Tasker) -> None:
    _, status, _ = _pipeline(ruby_app, simulate={"pull_sales": {"fail_times": 1}})
    assert status == "complete"
    text = ruby_app.metrics.render()
    assert 'tasker_handler_undeclared_events_total{event="extraction_failed",handler="PullSalesHandler"} 1.0' in text


def test_pipeline_permanent_failure_stops_the_dependent_steps(ruby_app: Tasker) -> None:
    task_id, status, _ = _pipeline(ruby_app, simulate={"score_accounts": {"fail_times": 1, "error": "permanent"}})
    assert status == "error"
    attempts = _attempts(ruby_app, task_id)
    assert attempts["score_accounts"] == ("error", 1)
    assert attempts["score_catalog"] == ("complete", 1)
    assert {attempts[s][0] for s in ("compile_report", "refresh_board", "notify_team")} == {"pending"}


def test_production_environment_overrides_a_step(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"environment": "production", "templates": {"handler_aliases": HANDLER_ALIASES}})
    [template] = app.load_task_templates(TEMPLATES / "analytics.yaml")
    assert template.step("pull_catalog").handler_config == {"batch_size": 500, "source": "catalog_api_eu"}


# -- a diamond of API steps, and delegation across namespaces ----------------------------------------------------


class _Services(BaseHTTPRequestHandler):
    """The accounts and payments services: canned JSON, scripted failures, a ``/tasks`` endpoint."""

    failures: dict[str, list[int]]
    calls: list[tuple[str, str]]
    create_task: Callable[[dict[str, Any]], int] | None

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        type(self).calls.append((self.command, self.path))
        scripted = type(self).failures.get(self.path)
        if scripted:
            self._send(scripted.pop(0), {"error": "scripted"}, {"Retry-After": "0"})
        elif self.path == "/tasks" and type(self).create_task is not None:
            self._send(201, {"task_id": type(self).create_task(body)})
        else:
            self._send(201, {"id": f"{self.path.rsplit('/', 1)[-1]}-1"})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def services() -> Iterator[tuple[str, type[_Services]]]:
    routes = type("Routes", (_Services,), {"failures": {}, "calls": [], "create_task": None})
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), routes)) as port:
        yield f"http://127.0.0.1:{port}", routes


def _signup_template(base_url: str) -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES / "signup.yaml").read_text())
    data["handler_config"]["url"] = f"{base_url}/api"
    return dict(data)


def _signup(app: Tasker, base_url: str) -> tuple[int, str]:
    app.register_task_template(_signup_template(base_url))
    return _run(app, "accounts", "open_account", "1.1.0", {"member": {"email": "a@example.com", "plan": "team"}})


def test_api_diamond_completes_with_faraday_paths(ruby_app: Tasker, services: tuple[str, type[_Services]]) -> None:
    url, routes = services
    task_id, status = _signup(ruby_app, url)
    assert status == "complete"
    assert routes.calls[0] == ("POST", "/api/accounts")
    assert sorted(routes.calls[1:3]) == [("POST", "/api/billing/profiles"), ("PUT", "/prefs/v1/preferences")]
    assert routes.calls[3] == ("POST", "/api/welcome")
    results = {s.name: s.results for s in ruby_app.get_task(task_id).steps}
    assert results["create_account"] == {"account_id": "accounts-1"}
    assert results["send_welcome"] == {"welcome": "welcome-1"}


def test_api_step_retries_a_server_error_even_with_its_own_process_results(
    ruby_app: Tasker, services: tuple[str, type[_Services]]
) -> None:
    url, routes = services
    routes.failures["/api/billing/profiles"] = [500]
    routes.failures["/api/welcome"] = [503]
    task_id, status = _signup(ruby_app, url)
    assert status == "complete"
    attempts = _attempts(ruby_app, task_id)
    assert attempts["setup_billing"] == ("complete", 2)
    assert attempts["send_welcome"] == ("complete", 2)


def test_api_client_error_is_permanent(ruby_app: Tasker, services: tuple[str, type[_Services]]) -> None:
    url, routes = services
    routes.failures["/prefs/v1/preferences"] = [422]
    task_id, status = _signup(ruby_app, url)
    assert status == "error"
    task = ruby_app.get_task(task_id)
    assert task.step("store_preferences").results["error_code"] == "HTTP_422"
    assert task.step("send_welcome").status == "pending"


def test_the_test_environment_overrides_the_top_level_handler_config(ruby_app: Tasker) -> None:
    template = ruby_app.register_task_template(_signup_template("http://127.0.0.1:9"))
    assert all(s.handler_config["timeout"] == 2 for s in template.step_templates)
    assert template.step("setup_billing").handler_config["retry_delay"] == 0.5


def test_same_task_name_in_two_namespaces_and_versions_delegates_across(
    ruby_app: Tasker, services: tuple[str, type[_Services]]
) -> None:
    url, routes = services
    data = yaml.safe_load((TEMPLATES / "support_refund.yaml").read_text())
    data["step_templates"][3]["handler_config"]["url"] = url
    ruby_app.register_task_template(data)
    ruby_app.load_task_templates(TEMPLATES / "payments_refund.yaml")
    assert ruby_app.templates.versions("support", "issue_refund") == ["1.2.0"]
    assert ruby_app.templates.versions("payments", "issue_refund") == ["2.0.0"]

    def create_payments_task(body: dict[str, Any]) -> int:
        request = TaskRequest(namespace=body["namespace"], name=body["name"], version=body["version"],
                              context=body["context"])  # fmt: skip
        return ruby_app.create_task(request).task_id

    routes.create_task = create_payments_task
    routes.failures["/tasks"] = [503]  # the payments service is briefly unavailable
    support_id, status = _run(ruby_app, "support", "issue_refund", "1.2.0",
                              {"ticket": "T-9", "charge_id": "ch_7", "amount_cents": 1500})  # fmt: skip
    assert status == "complete"
    support = ruby_app.get_task(support_id)
    assert support.step("delegate_to_payments").attempts == 2
    payments_id = support.step("close_ticket").results["payments_task_id"]
    assert ruby_app.run_until_done(payments_id, timeout=30) == "complete"
    payments = ruby_app.get_task(payments_id)
    assert (payments.namespace, payments.name, payments.version) == ("payments", "issue_refund", "2.0.0")
    assert payments.step("notify_customer").results == {"notified": "support:T-9"}


def test_a_refund_over_the_policy_limit_fails_permanently(ruby_app: Tasker) -> None:
    ruby_app.load_task_templates(TEMPLATES / "support_refund.yaml")
    task_id, status = _run(ruby_app, "support", "issue_refund", "1.2.0",
                           {"ticket": "T-1", "charge_id": "ch_1", "amount_cents": 90000})  # fmt: skip
    assert status == "error"
    assert _attempts(ruby_app, task_id)["check_policy"] == ("error", 1)
