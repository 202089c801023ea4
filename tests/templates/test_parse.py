"""Parsing valid templates from dicts and YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasker.errors import TemplateError
from tasker.templates import CustomEventSpec, StepTemplate, TaskTemplate, load_templates, parse_template
from tests.templates import handlers


def _check_diamond(template: TaskTemplate) -> None:
    assert template.key == ("ecommerce", "order_process", "1.2.0")
    assert template.full_name == "ecommerce.order_process@1.2.0"
    assert template.step_names == ["validate", "reserve", "charge", "send"]
    assert template.context_schema is not None
    assert template.context_schema["required"] == ["order_id"]
    assert template.step("validate").handler is handlers.ValidateOrder
    assert template.step("charge").handler is handlers.ChargeCard
    charge = template.step("charge")
    assert charge.default_retry_limit == 5
    assert charge.handler_config["url"] == "A"
    assert charge.custom_events == [CustomEventSpec(name="payment.charged", description="Card charged")]
    send = template.step("send")
    assert send.all_dependencies() == ["reserve", "charge"]
    assert send.default_retryable is False
    assert send.skippable is True
    validate = template.step("validate")
    assert validate.default_retryable is True
    assert validate.default_retry_limit == 3
    assert validate.skippable is False
    assert validate.handler_config == {}
    assert validate.all_dependencies() == []


def test_diamond_from_dict(diamond: dict[str, Any]) -> None:
    _check_diamond(parse_template(diamond))


def test_diamond_from_yaml_file(diamond: dict[str, Any], write_yaml: Any) -> None:
    path = write_yaml(diamond)
    [template] = load_templates(path)
    _check_diamond(template)
    [again] = load_templates(str(path))
    assert again == template


def test_directory_loads_yaml_and_yml_sorted(diamond: dict[str, Any], write_yaml: Any, tmp_path: Path) -> None:
    second = dict(diamond, name="b_second")
    write_yaml(second, "b.yml")
    write_yaml(diamond, "a.yaml")
    write_yaml("not: a template", "notes.txt")
    (tmp_path / "nested").mkdir()
    templates = load_templates(tmp_path)
    assert [t.name for t in templates] == ["order_process", "b_second"]


def test_parse_does_not_mutate_input(diamond: dict[str, Any]) -> None:
    diamond["environments"] = {"development": {"description": "changed"}}
    before = repr(diamond)
    template = parse_template(diamond)
    assert template.description == "changed"
    assert repr(diamond) == before


def test_defaults(diamond: dict[str, Any]) -> None:
    minimal = {
        "name": "tiny",
        "step_templates": [{"name": "only", "handler_class": "tests.templates.handlers:ValidateOrder"}],
    }
    template = parse_template(minimal)
    assert template.key == ("default", "tiny", "0.1.0")
    assert template.context_schema is None
    assert template.environments == {}
    assert template.configuration == {}
    assert template.named_steps is None


def test_dependent_system_defaults(diamond: dict[str, Any]) -> None:
    template = parse_template(diamond)
    assert template.dependent_system_for(template.step("reserve")) == "inventory"
    assert template.dependent_system_for(template.step("validate")) == "order_service"
    assert template.dependent_system_for("send") == "order_service"
    del diamond["default_dependent_system"]
    template = parse_template(diamond)
    assert template.dependent_system_for(template.step("validate")) == "unknown"
    assert template.dependent_system_for(template.step("reserve")) == "inventory"


def test_all_dependencies_dedupes_in_order() -> None:
    step = StepTemplate(
        name="s",
        handler_class="tests.templates.handlers:ValidateOrder",
        depends_on_step="b",
        depends_on_steps=["a", "b", "c", "a"],
    )
    assert step.all_dependencies() == ["b", "a", "c"]


def test_nested_handler_paths(diamond: dict[str, Any]) -> None:
    diamond["step_templates"][0]["handler_class"] = "tests.templates.handlers:Outer.Inner"
    diamond["step_templates"][1]["handler_class"] = "tests.templates.handlers.Outer.Inner"
    template = parse_template(diamond)
    assert template.step("validate").handler is handlers.Outer.Inner
    assert template.step("reserve").handler is handlers.Outer.Inner


def test_resolve_handlers_false_defers_import(diamond: dict[str, Any]) -> None:
    diamond["step_templates"][0]["handler_class"] = "not_installed_pkg.handlers:Missing"
    template = parse_template(diamond, resolve_handlers=False)
    assert template.step("charge").handler is handlers.ChargeCard  # imported on first use
    with pytest.raises(TemplateError) as info:
        _ = template.step("validate").handler
    assert info.value.step == "validate"
    assert info.value.field == "handler_class"
    assert "No module named 'not_installed_pkg'" in str(info.value)


def test_templates_are_immutable(diamond: dict[str, Any]) -> None:
    template = parse_template(diamond)
    with pytest.raises(Exception, match="frozen"):
        template.name = "other"


def test_unknown_step_lookup(diamond: dict[str, Any]) -> None:
    template = parse_template(diamond)
    with pytest.raises(TemplateError, match="step 'nope'"):
        template.step("nope")


def test_null_handler_config_is_empty(diamond: dict[str, Any]) -> None:
    diamond["step_templates"][0]["handler_config"] = None
    assert parse_template(diamond).step("validate").handler_config == {}
