"""Ruby Tasker templates load as written: Ruby keys, Ruby constant handler names resolved when a task runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasker import Tasker, TaskRequest
from tasker.errors import TemplateError
from tasker.handlers import StepHandler, TaskHandler
from tasker.templates import TemplateRegistry, load_templates, parse_template
from tasker.templates.resolve import HandlerResolver, underscore
from tests.templates import handlers

#: Seven templates copied unchanged from tasker-systems/tasker (see ruby_fixtures/README.md).
RUBY_FIXTURES = Path(__file__).parent / "ruby_fixtures"


def _ruby(**extra: Any) -> dict[str, Any]:
    return {
        "name": "ruby_task",
        "namespace_name": "billing",
        "version": "1.0.0",
        "task_handler_class": "Billing::RubyTaskHandler",
        "step_templates": [
            {"name": "a", "handler_class": "Billing::StepHandlers::ChargeCard", "handler_config": {"x": 1}},
            {"name": "b", "handler_class": "Billing::StepHandlers::Refund", "depends_on_step": "a"},
        ],
        **extra,
    }


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_the_seven_ruby_templates_load_unchanged(environment: str) -> None:
    templates = load_templates(RUBY_FIXTURES, environment=environment)
    assert len(templates) == 7
    by_file = {t.full_name: t for t in templates}
    assert set(by_file) == {
        "ecommerce.process_order@1.0.0",
        "blog_examples.customer_analytics@1.0.0",
        "blog_examples.user_registration@1.0.0",
        "customer_success.process_refund@1.3.0",
        "payments.process_refund@2.1.0",
        "blog_examples.monitored_checkout@1.0.0",
        "api_tests.api_task/integration_yaml_example@0.1.0",
    }
    assert all(t.task_handler_name for t in templates)
    assert all(s.is_ruby_handler for t in templates for s in t.step_templates)


def test_ruby_keys_are_kept() -> None:
    pipeline = parse_template_file("customer_analytics_handler.yaml")
    assert [e.name for e in pipeline.custom_events] == [
        "blog_examples.data_extraction_started",
        "blog_examples.data_extraction_completed",
        "blog_examples.pipeline_milestone_reached",
    ]
    assert pipeline.task_handler_name == "BlogExamples::Post02::CustomerAnalyticsHandler"
    api = parse_template_file("integration_yaml_example.yaml", environment="test")
    assert api.module_namespace == "ApiTask"
    assert api.task_handler_name == "ApiTask::IntegrationYamlExample"
    assert api.step("fetch_cart").handler_config["url"] == "http://test-api.ecommerce.com/cart"
    checkout = parse_template_file("monitored_checkout_handler.yaml")
    config = checkout.step("process_payment").handler_config
    assert config["timeout_seconds"] == 30  # the step's own key
    assert config["monitoring"]["sla_seconds"] == 45  # the template's handler_config, merged in


def parse_template_file(name: str, environment: str = "development") -> Any:
    [template] = load_templates(RUBY_FIXTURES / name, environment=environment)
    return template


def test_top_level_handler_config_is_a_default_the_step_overrides() -> None:
    template = parse_template(
        _ruby(handler_config={"x": 0, "nested": {"a": 1, "b": 2}}, concurrent=False)
        | {
            "step_templates": [
                {"name": "a", "handler_class": "Billing::A", "handler_config": {"x": 1, "nested": {"b": 3}}},
                {"name": "b", "handler_class": "Billing::B", "depends_on_step": "a"},
            ]
        }
    )
    assert template.step("a").handler_config == {"x": 1, "nested": {"a": 1, "b": 3}}
    assert template.step("b").handler_config == {"x": 0, "nested": {"a": 1, "b": 2}}
    assert template.concurrent is False


def test_dotted_custom_event_names_are_kept() -> None:
    template = parse_template(_ruby(custom_events=[{"name": "billing_audit.done"}, {"name": "started"}]))
    assert [e.name for e in template.custom_events] == ["billing_audit.done", "billing.started"]


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.update(task_handler_klass="X"), "task_handler_klass", "unknown key"),
        (lambda d: d.update(module_namespace="api task"), "module_namespace", "Ruby module name"),
        (lambda d: d.update(task_handler_class="not a class"), "task_handler_class", "Ruby constant"),
        (lambda d: d["step_templates"][0].update(handler_class="billing::x"), "handler_class", "Ruby constant"),
        (lambda d: d.update(custom_events=[{"name": "x", "descripton": "typo"}]), "custom_events.0.descripton", ""),
    ],
)
def test_typos_are_still_refused(mutate: Any, field: str, reason: str) -> None:
    data = _ruby()
    mutate(data)
    with pytest.raises(TemplateError) as info:
        parse_template(data)
    assert info.value.field == field
    assert reason in info.value.reason


def test_override_of_an_unknown_step_is_refused_in_any_environment() -> None:
    data = _ruby(environments={"production": {"step_templates": [{"name": "chrage", "handler_config": {}}]}})
    with pytest.raises(TemplateError) as info:
        parse_template(data, environment="development")
    assert info.value.step == "chrage"
    assert info.value.field == "environments.production.step_templates"
    assert "Ruby Tasker silently ignores" in str(info.value)


def test_underscore_follows_rails() -> None:
    assert underscore("ValidateCartHandler") == "validate_cart_handler"
    assert underscore("Post01") == "post01"
    assert underscore("APIClient") == "api_client"
    assert underscore("StepHandlers") == "step_handlers"


def test_candidates_aliases_longest_first_then_convention() -> None:
    resolver = HandlerResolver({"Billing": "acme.billing", "Billing::StepHandlers::Refund": "acme.refunds:Refunder"})
    assert resolver.candidates("Billing::StepHandlers::ChargeCard") == [
        "acme.billing.step_handlers.charge_card:ChargeCard",
        "acme.billing.step_handlers:ChargeCard",
        "acme.billing:ChargeCard",
        "billing.step_handlers.charge_card:ChargeCard",
        "billing.step_handlers:ChargeCard",
    ]
    assert resolver.candidates("Billing::StepHandlers::Refund")[0] == "acme.refunds:Refunder"


def test_ruby_handlers_resolve_through_aliases_only_when_needed() -> None:
    registry = TemplateRegistry(
        {"Billing::StepHandlers": "tests.templates.handlers", "Billing::RubyTaskHandler": "tests.templates.handlers"}
    )
    template = parse_template(_ruby(task_handler_class="RubyTaskHandler", module_namespace="Billing"))
    assert registry.step_handler(template, template.step("a")) is handlers.ChargeCard
    with pytest.raises(TemplateError) as info:
        registry.step_handler(template, template.step("b"))
    message = str(info.value)
    assert message.startswith("billing.ruby_task@1.0.0, step 'b', field 'handler_class': cannot resolve Ruby handler")
    for candidate in (
        "tests.templates.handlers.refund:Refund",
        "tests.templates.handlers:Refund",
        "billing.step_handlers.refund:Refund",
    ):
        assert candidate in message
    assert "has no attribute 'Refund'" in message
    assert registry.task_handler(template) is handlers.RubyTaskHandler
    assert registry.task_handler(parse_template(_ruby(task_handler_class=None))) is None


def test_a_resolved_class_must_be_a_handler() -> None:
    registry = TemplateRegistry({"Billing": "tests.templates.handlers"})
    template = parse_template(_ruby(task_handler_class="Billing::ChargeCard"))
    with pytest.raises(TemplateError, match=r"not a subclass of tasker\.handlers\.task\.TaskHandler"):
        registry.task_handler(template)
    assert issubclass(handlers.ChargeCard, StepHandler) and not issubclass(handlers.ChargeCard, TaskHandler)


def test_app_registers_ruby_templates_without_importing_handlers(tmp_path: Path) -> None:
    app = Tasker(f"sqlite:///{tmp_path}/t.db")
    try:
        registered = app.load_task_templates(RUBY_FIXTURES)
        assert len(registered) == 7
        assert app.events.catalog.get("blog_examples.data_extraction_started") is not None
    finally:
        app.shutdown()


def test_graph_cli_draws_a_ruby_template() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tasker", "graph", str(RUBY_FIXTURES / "customer_analytics_handler.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "generate_insights" in result.stdout


# -- two of the vendored templates run unchanged, with Python handlers -------------------------------------------

BLOG_ALIASES = {
    "BlogExamples::Post01": "tests.templates.ruby_blog.post01",
    "BlogExamples::Post02": "tests.templates.ruby_blog.post02",
    "BlogExamples::Post02::CustomerAnalyticsHandler": "tasker.handlers:TaskHandler",
}


def test_post01_enrichment_happens_in_the_task_handler_hook(make_app: Any) -> None:
    app = make_app({"templates": {"handler_aliases": BLOG_ALIASES}})
    app.load_task_templates(RUBY_FIXTURES / "order_processing_handler.yaml")
    context = {
        "cart_items": [{"product_id": 1, "quantity": 2, "price": 9.5}],
        "payment_info": {"method": "credit_card", "amount": 19.0, "currency": "USD"},
        "customer_info": {"email": "ada@example.com", "name": "Ada", "tier": "premium"},
        "priority": "express",
    }
    task = app.create_task(TaskRequest(name="process_order", namespace="ecommerce", version="1.0.0", context=context))
    assert app.run_until_done(task.task_id) == "complete"
    done = app.get_task(task.task_id)
    assert done.context["premium_processing"] == {"priority": "high", "faster_processing": True}
    assert done.context["express_processing"]["payment_retries"] == 1
    assert done.step("send_confirmation").results == {"step": "send_confirmation", "premium": True}
    assert [s.retry_limit for s in done.steps] == [3, 3, 2, 3, 5]


def test_post02_pipeline_completes_publishing_rubys_event_names(make_app: Any) -> None:
    app = make_app({"templates": {"handler_aliases": BLOG_ALIASES}})
    app.load_task_templates(RUBY_FIXTURES / "customer_analytics_handler.yaml")
    received: list[str] = []
    for name in ("data_extraction_started", "data_extraction_completed", "pipeline_milestone_reached"):
        app.events.subscribe(f"blog_examples.{name}", lambda event: received.append(event.name))
    context = {"date_range": {"start_date": "2025-01-01", "end_date": "2025-01-31"}, "flaky": {"extract_users": 1}}
    task = app.create_task(
        TaskRequest(name="customer_analytics", namespace="blog_examples", version="1.0.0", context=context)
    )
    assert app.run_until_done(task.task_id) == "complete"
    assert received.count("blog_examples.data_extraction_started") == 4  # extract_users ran twice
    assert received.count("blog_examples.data_extraction_completed") == 3
    assert received.count("blog_examples.pipeline_milestone_reached") == 5
    assert app.get_task(task.task_id).step("extract_users").attempts == 2
    assert 'event="data_extraction_failed"' in app.metrics.render()
