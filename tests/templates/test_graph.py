"""TemplateGraph: structure, order, cycles and rendering."""

from __future__ import annotations

from typing import Any

import pytest

from tasker.errors import TemplateError
from tasker.templates import TemplateGraph, parse_template

DIAMOND_EDGES = [("validate", "reserve"), ("validate", "charge"), ("reserve", "send"), ("charge", "send")]


def test_diamond_structure(diamond: dict[str, Any]) -> None:
    template = parse_template(diamond)
    graph = TemplateGraph.from_template(template)
    assert graph.name == "ecommerce.order_process@1.2.0"
    assert graph.nodes == ["validate", "reserve", "charge", "send"]
    assert graph.edges == DIAMOND_EDGES
    assert graph.roots == ["validate"]
    assert graph.leaves == ["send"]
    assert graph.levels == {"validate": 0, "reserve": 1, "charge": 1, "send": 2}
    assert graph.by_level() == [["validate"], ["reserve", "charge"], ["send"]]
    assert graph.topological_order() == ["validate", "reserve", "charge", "send"]
    assert graph.find_cycle() is None
    assert graph.dependents("validate") == ["reserve", "charge"]
    assert graph.dependencies("send") == ["reserve", "charge"]
    assert template.graph().edges == graph.edges


def test_diamond_mermaid(diamond: dict[str, Any]) -> None:
    mermaid = parse_template(diamond).graph().to_mermaid()
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart TD"
    assert [line for line in lines if "-->" in line] == [f"    {a} --> {b}" for a, b in DIAMOND_EDGES]
    assert "    %% level 0: validate" in lines
    assert "    %% level 1: reserve, charge" in lines
    assert "    %% level 2: send" in lines


def test_mermaid_isolated_and_awkward_names() -> None:
    graph = TemplateGraph([("a", []), ("b", ["a"]), ("lonely", []), ("end", ["b"]), ("my step", ["b"])])
    lines = graph.to_mermaid().splitlines()
    assert "    a --> b" in lines
    assert "    lonely" in lines
    assert '    step_3["end"]' in lines
    assert "    b --> step_3" in lines
    assert '    step_4["my step"]' in lines
    assert "    b --> step_4" in lines
    assert lines.index("    lonely") > lines.index("    b --> step_4")


def test_dot(diamond: dict[str, Any]) -> None:
    dot = parse_template(diamond).graph().to_dot()
    assert dot.startswith('digraph "ecommerce.order_process@1.2.0" {')
    for parent, child in DIAMOND_EDGES:
        assert f'    "{parent}" -> "{child}";' in dot
    assert dot.rstrip().endswith("}")
    assert '"say \\"hi\\""' in TemplateGraph([('say "hi"', [])]).to_dot()


def test_levels_use_longest_path() -> None:
    graph = TemplateGraph.from_dependencies([("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["a", "c"]), ("e", [])])
    assert graph.levels == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}
    assert graph.roots == ["a", "e"]
    assert graph.leaves == ["d", "e"]


def test_topological_order_prefers_definition_order() -> None:
    graph = TemplateGraph([("late", ["early"]), ("x", []), ("early", [])])
    assert graph.topological_order() == ["x", "early", "late"]


def test_undefined_dependencies_become_nodes() -> None:
    graph = TemplateGraph([("b", ["a"])])
    assert graph.nodes == ["b", "a"]
    assert graph.roots == ["a"]


def test_cycle_detection_and_renderers_refuse() -> None:
    graph = TemplateGraph([("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", [])])
    assert graph.find_cycle() == ["a", "b", "c", "a"]
    assert graph.has_cycle()
    for render in (graph.to_mermaid, graph.to_dot, graph.topological_order):
        with pytest.raises(TemplateError, match=r"dependency cycle: a -> b -> c -> a"):
            render()
    with pytest.raises(TemplateError, match="dependency cycle"):
        _ = graph.levels


def test_self_loop_cycle() -> None:
    assert TemplateGraph([("a", ["a"])]).find_cycle() == ["a", "a"]


def test_duplicate_nodes_rejected() -> None:
    with pytest.raises(TemplateError, match="duplicate step name"):
        TemplateGraph([("a", []), ("a", [])])


def test_long_chain_has_no_recursion_limit() -> None:
    steps: list[tuple[str, list[str]]] = [("s0", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(1, 5000)]
    graph = TemplateGraph(steps)
    assert graph.find_cycle() is None
    assert graph.levels["s4999"] == 4999
