"""``tasker graph``: the step DAG as Mermaid or DOT, levels, roots and leaves; cycles refused."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import ORDER_TEMPLATE, assert_one_line_error, invoke

# Handler classes that cannot be imported: graphing must not need them.
DIAMOND = """\
name: diamond
namespace_name: shapes
version: 1.0.0
step_templates:
  - {name: a, handler_class: "not_installed.handlers:A"}
  - {name: b, handler_class: "not_installed.handlers:B", depends_on_step: a}
  - {name: c, handler_class: "not_installed.handlers:C", depends_on_step: a}
  - {name: d, handler_class: "not_installed.handlers:D", depends_on_steps: [b, c]}
"""

CYCLE = """\
name: loop
step_templates:
  - {name: a, handler_class: "x.y:A", depends_on_step: c}
  - {name: b, handler_class: "x.y:B", depends_on_step: a}
  - {name: c, handler_class: "x.y:C", depends_on_step: b}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_diamond_as_mermaid(tmp_path: Path) -> None:
    result = invoke("graph", str(write(tmp_path, "diamond.yaml", DIAMOND)))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "flowchart TD\n"
        "    %% level 0: a\n"
        "    %% level 1: b, c\n"
        "    %% level 2: d\n"
        "    a --> b\n"
        "    a --> c\n"
        "    b --> d\n"
        "    c --> d\n"
        "    %% roots: a\n"
        "    %% leaves: d\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert [line for line in lines if "-->" in line] == ["    a --> b", "    a --> c", "    b --> d", "    c --> d"]


def test_diamond_as_dot(tmp_path: Path) -> None:
    result = invoke("graph", str(write(tmp_path, "diamond.yaml", DIAMOND)), "--format", "dot")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == 'digraph "shapes.diamond@1.0.0" {' and lines[-1] == "}"
    assert [line for line in lines if "->" in line] == [
        '    "a" -> "b";',
        '    "a" -> "c";',
        '    "b" -> "d";',
        '    "c" -> "d";',
    ]
    assert "    // level 1: b, c" in lines
    assert lines[-3:-1] == ["    // roots: a", "    // leaves: d"]


def test_example_template() -> None:
    result = invoke("graph", str(ORDER_TEMPLATE))
    assert result.exit_code == 0, result.output
    assert "    validate_order --> charge_payment" in result.stdout
    assert "    %% level 2: ship_order" in result.stdout
    assert "    %% leaves: notify_customer" in result.stdout


def test_a_directory_graphs_every_template(tmp_path: Path) -> None:
    write(tmp_path, "a_diamond.yaml", DIAMOND)
    write(tmp_path, "b_chain.yaml", "name: chain\nstep_templates:\n  - {name: x, handler_class: 'm:X'}\n")
    result = invoke("graph", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("flowchart TD") == 2
    assert "%% shapes.diamond@1.0.0" in result.stdout and "%% default.chain@0.1.0" in result.stdout
    assert "    x\n" in result.stdout  # a step with no edges is still drawn


def test_a_cycle_is_an_error_naming_it(tmp_path: Path) -> None:
    result = invoke("graph", str(write(tmp_path, "loop.yaml", CYCLE)))
    line = assert_one_line_error(result, "dependency cycle", "loop.yaml")
    assert "a -> b -> c -> a" in line
    assert result.stdout == ""


def test_bad_input(tmp_path: Path) -> None:
    assert_one_line_error(invoke("graph", str(tmp_path / "missing.yaml")), "missing.yaml", exit_code=2)
    assert_one_line_error(invoke("graph", str(ORDER_TEMPLATE), "--format", "png"), "--format", exit_code=2)
    assert_one_line_error(invoke("graph", str(tmp_path)), "no *.yaml or *.yml task templates")
    broken = write(tmp_path, "broken.yaml", "name: x\nstep_templates: []\n")
    assert_one_line_error(invoke("graph", str(broken)), "broken.yaml")
