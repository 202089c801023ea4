"""Environment overrides are deep-merged, with step templates matched by name."""

from __future__ import annotations

from typing import Any

from tasker.templates import parse_template

OVERRIDES = {
    "test": {
        "description": "test copy",
        "configuration": {"owner": "qa"},
        "step_templates": [
            {"name": "charge", "handler_config": {"url": "B", "params": {"test_mode": True}}},
            {"name": "validate", "default_retry_limit": 1},
        ],
    },
    "production": {"step_templates": [{"name": "charge", "handler_config": {"url": "PROD"}}]},
}


def test_override_merges_by_step_name(diamond: dict[str, Any]) -> None:
    diamond["environments"] = OVERRIDES
    diamond["configuration"] = {"owner": "orders", "team": "x"}
    template = parse_template(diamond, environment="test")
    assert template.step("charge").handler_config == {
        "type": "api",
        "url": "B",
        "params": {"cart_id": 1, "test_mode": True},
    }
    # base order kept, untouched keys kept
    assert template.step_names == ["validate", "reserve", "charge", "send"]
    assert template.step("validate").default_retry_limit == 1
    assert template.step("charge").default_retry_limit == 5
    assert template.step("charge").depends_on_steps == ["validate"]
    assert template.description == "test copy"
    assert template.configuration == {"owner": "qa", "team": "x"}


def test_other_environment_is_ignored(diamond: dict[str, Any]) -> None:
    diamond["environments"] = OVERRIDES
    template = parse_template(diamond)  # development: no overrides
    assert template.step("charge").handler_config == {"type": "api", "url": "A", "params": {"cart_id": 1}}
    assert template.description == "diamond"
    prod = parse_template(diamond, environment="production")
    assert prod.step("charge").handler_config["url"] == "PROD"
    assert prod.step("charge").handler_config["params"] == {"cart_id": 1}


def test_environments_are_kept_for_reference(diamond: dict[str, Any]) -> None:
    diamond["environments"] = OVERRIDES
    template = parse_template(diamond, environment="test")
    assert set(template.environments) == {"test", "production"}
    assert template.environments["production"] == OVERRIDES["production"]


def test_lists_replace(diamond: dict[str, Any]) -> None:
    diamond["environments"] = {"ci": {"step_templates": [{"name": "send", "depends_on_steps": ["charge"]}]}}
    template = parse_template(diamond, environment="ci")
    assert template.step("send").all_dependencies() == ["charge"]


def test_empty_environment(diamond: dict[str, Any]) -> None:
    diamond["environments"] = {"development": None}
    template = parse_template(diamond)
    assert template.environments == {"development": {}}


def test_yaml_file_with_environment(diamond: dict[str, Any], write_yaml: Any) -> None:
    from tasker.templates import load_templates

    diamond["environments"] = OVERRIDES
    [template] = load_templates(write_yaml(diamond), environment="test")
    assert template.step("charge").handler_config["params"] == {"cart_id": 1, "test_mode": True}
