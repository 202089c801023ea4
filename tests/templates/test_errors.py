"""Every way a template can be invalid raises TemplateError naming the file, step and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasker.errors import TemplateError
from tasker.templates import import_handler, load_templates, parse_template

Mutation = Callable[[dict[str, Any]], object]


def _steps(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in data["step_templates"]}


def _load_error(write_yaml: Any, data: Any) -> tuple[TemplateError, str]:
    path = write_yaml(data)
    with pytest.raises(TemplateError) as info:
        load_templates(path)
    return info.value, str(path)


def _assert_names(error: TemplateError, source: str, step: str | None, field: str | None) -> None:
    message = str(error)
    assert error.source == source
    assert message.startswith(source + ", " if step or field else source + ": ")
    assert error.step == step
    assert error.field == field
    if step:
        assert f"step '{step}'" in message
    if field:
        assert f"field '{field}'" in message


CASES: list[tuple[str, Mutation, str | None, str | None, str]] = [
    (
        "unknown step key",
        lambda d: _steps(d)["charge"].update(depends_on_stp="validate"),
        "charge",
        "depends_on_stp",
        "unknown key",
    ),
    ("unknown top-level key", lambda d: d.update(nmae="x"), None, "nmae", "unknown key"),
    (
        "unknown custom event key",
        lambda d: _steps(d)["charge"]["custom_events"][0].update(desc="x"),
        "charge",
        "custom_events.0.desc",
        "unknown key",
    ),
    ("missing name", lambda d: d.pop("name"), None, "name", "required key is missing"),
    (
        "missing handler_class",
        lambda d: _steps(d)["reserve"].pop("handler_class"),
        "reserve",
        "handler_class",
        "required key is missing",
    ),
    (
        "nameless step",
        lambda d: d["step_templates"][1].pop("name"),
        None,
        "step_templates.1.name",
        "required key is missing",
    ),
    (
        "wrong type",
        lambda d: _steps(d)["send"].update(default_retry_limit="lots"),
        "send",
        "default_retry_limit",
        "valid integer",
    ),
    (
        "retry limit below one",
        lambda d: _steps(d)["send"].update(default_retry_limit=0),
        "send",
        "default_retry_limit",
        "greater than or equal to 1",
    ),
    ("no steps", lambda d: d.update(step_templates=[]), None, "step_templates", "at least 1 item"),
    ("bad semver", lambda d: d.update(version="1.2"), None, "version", "semantic version"),
    ("bad semver suffix", lambda d: d.update(version="1.2.3-beta"), None, "version", "got '1.2.3-beta'"),
    (
        "duplicate step name",
        lambda d: d["step_templates"].append(
            {"name": "charge", "handler_class": "tests.templates.handlers:ChargeCard"}
        ),
        "charge",
        "name",
        "duplicate step name",
    ),
    (
        "step not in named_steps",
        lambda d: d.update(named_steps=["validate", "reserve", "send"]),
        "charge",
        "name",
        "step name 'charge' is not in the named_steps list",
    ),
    (
        "dependency not in named_steps",
        lambda d: (
            d.update(named_steps=["validate", "reserve", "charge", "send"]),
            _steps(d)["send"]["depends_on_steps"].append("audit"),
        ),
        "send",
        "depends_on_steps",
        "dependency 'audit' is not in the named_steps list",
    ),
    (
        "unknown dependency (depends_on_step)",
        lambda d: _steps(d)["reserve"].update(depends_on_step="validat"),
        "reserve",
        "depends_on_step",
        "depends on unknown step 'validat'",
    ),
    (
        "unknown dependency (depends_on_steps)",
        lambda d: _steps(d)["send"]["depends_on_steps"].append("ghost"),
        "send",
        "depends_on_steps",
        "depends on unknown step 'ghost'",
    ),
    (
        "self dependency",
        lambda d: _steps(d)["charge"]["depends_on_steps"].append("charge"),
        "charge",
        "depends_on_steps",
        "step depends on itself",
    ),
    (
        "dependency cycle",
        lambda d: _steps(d)["validate"].update(depends_on_step="send"),
        "validate",
        "depends_on_step",
        "dependency cycle: validate -> reserve -> send -> validate",
    ),
    (
        "unimportable handler module",
        lambda d: _steps(d)["charge"].update(handler_class="tests.templates.no_such_module:ChargeCard"),
        "charge",
        "handler_class",
        "ModuleNotFoundError: No module named 'tests.templates.no_such_module'",
    ),
    (
        "handler module raising on import",
        lambda d: _steps(d)["charge"].update(handler_class="tests.templates.broken_handlers:ChargeCard"),
        "charge",
        "handler_class",
        "RuntimeError: boom while importing broken_handlers",
    ),
    (
        "missing handler attribute",
        lambda d: _steps(d)["charge"].update(handler_class="tests.templates.handlers:ChargeKard"),
        "charge",
        "handler_class",
        "'tests.templates.handlers' has no attribute 'ChargeKard'",
    ),
    (
        "malformed handler path",
        lambda d: _steps(d)["charge"].update(handler_class="charge card"),
        "charge",
        "handler_class",
        "not an import path",
    ),
    (
        "handler not a StepHandler",
        lambda d: _steps(d)["charge"].update(handler_class="tests.templates.handlers:NotAHandler"),
        "charge",
        "handler_class",
        "is not a subclass of tasker.handlers.base.StepHandler",
    ),
    (
        "handler not a class",
        lambda d: _steps(d)["charge"].update(handler_class="tests.templates.handlers:not_a_class"),
        "charge",
        "handler_class",
        "is not a subclass of tasker.handlers.base.StepHandler (got int)",
    ),
    (
        "invalid JSON schema",
        lambda d: d["schema"]["properties"]["order_id"].update(type="integr"),
        None,
        "schema.properties.order_id.type",
        "not a valid JSON Schema",
    ),
    ("schema not a mapping", lambda d: d.update(schema="object"), None, "schema", "valid dictionary"),
    (
        "override of unknown step",
        lambda d: d.update(environments={"development": {"step_templates": [{"name": "refund", "skippable": True}]}}),
        "refund",
        "environments.development.step_templates",
        "environment 'development' overrides unknown step 'refund'",
    ),
]


@pytest.mark.parametrize(("mutate", "step", "field", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_template_from_file(
    diamond: dict[str, Any],
    write_yaml: Any,
    mutate: Mutation,
    step: str | None,
    field: str | None,
    reason: str,
) -> None:
    mutate(diamond)
    error, source = _load_error(write_yaml, diamond)
    _assert_names(error, source, step, field)
    assert reason in str(error)


def test_error_message_format(diamond: dict[str, Any]) -> None:
    _steps(diamond)["charge"]["depends_on_stp"] = "validate"
    with pytest.raises(TemplateError) as info:
        parse_template(diamond, source="config/tasks/order.yaml")
    assert str(info.value) == "config/tasks/order.yaml, step 'charge', field 'depends_on_stp': unknown key"


def test_default_source_for_dicts(diamond: dict[str, Any]) -> None:
    diamond["version"] = "one"
    with pytest.raises(TemplateError, match=r"^<dict>, field 'version': "):
        parse_template(diamond)


def test_several_errors_are_all_mentioned(diamond: dict[str, Any]) -> None:
    _steps(diamond)["charge"]["depends_on_stp"] = "x"
    _steps(diamond)["send"]["skippable"] = "maybe"
    with pytest.raises(TemplateError) as info:
        parse_template(diamond, source="f.yaml")
    assert info.value.step == "charge"
    assert "also: step 'send', field 'skippable'" in str(info.value)


def test_yaml_syntax_error_names_file_and_line(write_yaml: Any) -> None:
    text = (
        "name: broken\n"
        "step_templates:\n"
        "  - name: a\n"
        "    handler_class: tests.templates.handlers:ValidateOrder\n"
        "    depends_on_steps: [b, c\n"
        "  - name: b\n"
    )
    error, source = _load_error(write_yaml, text)
    assert error.source == source
    message = str(error)
    assert message.startswith(f"{source}: invalid YAML")
    assert "line 6" in message


def test_yaml_bad_indentation_line(write_yaml: Any) -> None:
    text = "name: x\nversion: 0.1.0\nstep_templates:\n  - name: a\n    handler_class: a.b\n   oops: 1\n"
    error, _ = _load_error(write_yaml, text)
    assert "line 6" in str(error)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "# only a comment\n"])
def test_top_level_not_a_mapping(write_yaml: Any, text: str) -> None:
    error, source = _load_error(write_yaml, text)
    assert error.source == source
    assert "top level of a task template file must be a mapping" in str(error)


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TemplateError) as info:
        load_templates(missing)
    assert info.value.source == str(missing)
    assert "no such file or directory" in str(info.value)


def test_error_in_second_file_names_that_file(diamond: dict[str, Any], write_yaml: Any, tmp_path: Path) -> None:
    write_yaml(diamond, "a.yaml")
    diamond["version"] = "x"
    bad = write_yaml(diamond, "b.yaml")
    with pytest.raises(TemplateError) as info:
        load_templates(tmp_path)
    assert info.value.source == str(bad)


def test_parse_template_rejects_non_mapping() -> None:
    with pytest.raises(TemplateError, match="must be a mapping"):
        parse_template(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_environments_must_be_mappings(diamond: dict[str, Any]) -> None:
    diamond["environments"] = {"development": ["x"]}
    with pytest.raises(TemplateError) as info:
        parse_template(diamond, source="f.yaml")
    assert info.value.field == "environments.development"


def test_import_handler_directly() -> None:
    from tests.templates.handlers import ChargeCard, Outer

    assert import_handler("tests.templates.handlers:ChargeCard") is ChargeCard
    assert import_handler("tests.templates.handlers.ChargeCard") is ChargeCard
    assert import_handler("tests.templates.handlers:Outer.Inner") is Outer.Inner
    with pytest.raises(TemplateError) as info:
        import_handler("tests.templates.handlers:Outer.Missing")
    assert info.value.field == "handler_class"
    assert "'tests.templates.handlers.Outer' has no attribute 'Missing'" in str(info.value)
    with pytest.raises(TemplateError, match="No module named 'nowhere'"):
        import_handler("nowhere.Handler")
