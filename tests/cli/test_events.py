"""``tasker events list|show``: the catalog on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasker.events import EventCatalog
from tests.cli.support import assert_one_line_error, invoke

CUSTOM_YAML = """\
events:
  invoice:
    paid:
      description: An invoice was paid.
      fired_by: [BillingHandler]
      payload_schema:
        invoice_id: {type: integer, required: true}
        note: {type: string}
"""


def test_list_prints_every_event_with_its_description() -> None:
    result = invoke("events", "list")
    assert result.exit_code == 0, result.output
    catalog = EventCatalog()
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == catalog.names()
    for line in lines:
        name = line.split()[0]
        assert line.endswith(catalog.spec(name).description)


@pytest.mark.parametrize("category", ["task", "step", "workflow", "observability"])
def test_list_one_category(category: str) -> None:
    result = invoke("events", "list", "--category", category)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == EventCatalog().names(category)


def test_list_custom_events_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "billing.yaml"
    path.write_text(CUSTOM_YAML)
    result = invoke("events", "list", "--events-file", str(path))
    assert result.stdout.splitlines()[-1].split() == ["invoice.paid", "An", "invoice", "was", "paid."]
    result = invoke("events", "list", "--category", "custom", "--events-file", str(path))
    assert result.stdout.splitlines() == ["invoice.paid  An invoice was paid."]
    empty = invoke("events", "list", "--category", "custom")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "--events-file" in empty.stderr


def test_show_describes_the_payload() -> None:
    result = invoke("events", "show", "step.failed")
    assert result.exit_code == 0, result.output
    spec = EventCatalog().spec("step.failed")
    out = result.stdout
    assert out.startswith("step.failed (step event)\n" + spec.description + "\n")
    assert "fired by: StepExecutor" in out
    table = out.split("payload:\n", 1)[1].split("\n\n", 1)[0]
    rows = {line.split()[0]: line.split()[1:3] for line in table.splitlines()}
    assert rows.pop("field") == ["type", "required"]
    assert rows == {f.name: [f.type, "yes" if f.required else "no"] for f in spec.fields}
    example = out.split("example payload:\n", 1)[1]
    assert json.loads(example) == spec.example_payload()


def test_show_json() -> None:
    result = invoke("events", "show", "task.completed", "--json")
    assert json.loads(result.stdout) == EventCatalog().spec("task.completed").as_dict()


def test_show_a_custom_event(tmp_path: Path) -> None:
    (tmp_path / "billing.yaml").write_text(CUSTOM_YAML)
    result = invoke("events", "show", "invoice.paid", "--events-file", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "fired by: BillingHandler" in result.stdout
    assert "  invoice_id  integer  yes" in result.stdout
    assert "  note        string   no" in result.stdout


def test_unknown_event_lists_close_matches() -> None:
    assert_one_line_error(invoke("events", "show", "task.complete"), "unknown event 'task.complete'", "task.completed")
    assert_one_line_error(invoke("events", "show", "zzz"), "unknown event 'zzz'", "tasker events list")


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  task:\n    thing: {}\n")
    assert_one_line_error(invoke("events", "list", "--events-file", str(bad)), "reserved")
    assert_one_line_error(invoke("events", "list", "--category", "nope"), "--category", exit_code=2)
    assert_one_line_error(invoke("events", "list", "--events-file", str(tmp_path / "missing.yaml")), exit_code=2)
