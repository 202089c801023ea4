"""Static DAG analysis of a task template: edges, roots, leaves, levels, cycles, Mermaid/DOT rendering."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from tasker.errors import TemplateError

if TYPE_CHECKING:
    from tasker.templates.model import TaskTemplate

__all__ = ["TemplateGraph"]

_MERMAID_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateGraph:
    """The dependency graph of a template's steps; an edge ``(parent, child)`` means child depends on parent.

    Nodes keep template (definition) order. A dependency on a name that is not a step becomes a
    node of its own, appended after the steps. Everything that needs an order (``levels``,
    ``topological_order()``, the renderers) raises ``TemplateError`` naming the cycle if there is one.
    """

    def __init__(self, steps: Iterable[tuple[str, Iterable[str]]], *, name: str | None = None) -> None:
        self.name = name
        self._deps: dict[str, list[str]] = {}
        for step, deps in steps:
            if step in self._deps:
                raise TemplateError("duplicate step name", source=name, step=step, field="name")
            self._deps[step] = list(dict.fromkeys(deps))
        for deps in list(self._deps.values()):
            for dep in deps:
                self._deps.setdefault(dep, [])
        self._nodes = list(self._deps)
        self._children: dict[str, list[str]] = {node: [] for node in self._nodes}
        for child in self._nodes:
            for parent in self._deps[child]:
                self._children[parent].append(child)

    @classmethod
    def from_template(cls, template: TaskTemplate) -> TemplateGraph:
        """The graph of ``template.step_templates``."""
        return cls(
            ((step.name, step.all_dependencies()) for step in template.step_templates),
            name=template.full_name,
        )

    @classmethod
    def from_dependencies(cls, steps: Iterable[tuple[str, Iterable[str]]], *, name: str | None = None) -> TemplateGraph:
        """The graph of ``(step name, dependency names)`` pairs."""
        return cls(steps, name=name)

    # -- structure ---------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        """Step names in definition order."""
        return list(self._nodes)

    def dependencies(self, node: str) -> list[str]:
        """The direct parents of ``node``."""
        return list(self._deps[node])

    def dependents(self, node: str) -> list[str]:
        """The direct children of ``node`` (steps that depend on it)."""
        return list(self._children[node])

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs, in child definition order then dependency order."""
        return [(parent, child) for child in self._nodes for parent in self._deps[child]]

    @property
    def roots(self) -> list[str]:
        """Steps with no dependencies."""
        return [node for node in self._nodes if not self._deps[node]]

    @property
    def leaves(self) -> list[str]:
        """Steps no other step depends on."""
        return [node for node in self._nodes if not self._children[node]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    # -- order -------------------------------------------------------------------------------

    def find_cycle(self) -> list[str] | None:
        """The first cycle found (DFS in definition order) as a path ending with the repeated node, or None.

        The path follows parent -> child edges: ``[a, b, a]`` means b depends on a and a on b.
        """
        state: dict[str, int] = {}  # absent: unvisited, 1: on the current path, 2: done
        for start in self._nodes:
            if start in state:
                continue
            path = [start]
            stack = [iter(self._children[start])]
            state[start] = 1
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                elif child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append(iter(self._children[child]))
        return None

    def has_cycle(self) -> bool:
        """Whether the graph has a dependency cycle."""
        return self.find_cycle() is not None

    def _check_acyclic(self) -> None:
        cycle = self.find_cycle()
        if cycle is not None:
            raise TemplateError(f"dependency cycle: {' -> '.join(cycle)}", source=self.name, step=cycle[0])

    def topological_order(self) -> list[str]:
        """Kahn's order; among ready steps the one defined first comes first."""
        self._check_acyclic()
        index = {node: i for i, node in enumerate(self._nodes)}
        pending = {node: len(self._deps[node]) for node in self._nodes}
        ready = [index[node] for node in self._nodes if pending[node] == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            node = self._nodes[heapq.heappop(ready)]
            order.append(node)
            for child in self._children[node]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, index[child])
        return order

    @property
    def levels(self) -> dict[str, int]:
        """``{step: level}``: roots are 0, any other step is 1 + the highest level of its dependencies."""
        levels: dict[str, int] = {}
        for node in self.topological_order():
            deps = self._deps[node]
            levels[node] = 1 + max(levels[dep] for dep in deps) if deps else 0
        return {node: levels[node] for node in self._nodes}

    def by_level(self) -> list[list[str]]:
        """Steps grouped by level (index = level), definition order within a level."""
        levels = self.levels
        groups: list[list[str]] = [[] for _ in range(max(levels.values(), default=-1) + 1)]
        for node in self._nodes:
            groups[levels[node]].append(node)
        return groups

    # -- rendering ---------------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart TD``: level comments, then one ``parent --> child`` line per edge.

        Names that are not plain identifiers (or are Mermaid's reserved ``end``) get a generated id
        declared with the name as its label. Steps with no edges are listed alone at the end.
        """
        groups = self.by_level()
        ids = self._mermaid_ids()
        lines = ["flowchart TD"]
        lines += [f"    %% level {level}: {', '.join(group)}" for level, group in enumerate(groups)]
        connected = {node for edge in self.edges for node in edge}
        for node in self._nodes:
            if node in connected and ids[node] != node:
                lines.append(f"    {_mermaid_node(ids[node], node)}")
        lines += [f"    {ids[parent]} --> {ids[child]}" for parent, child in self.edges]
        lines += [f"    {_mermaid_node(ids[node], node)}" for node in self._nodes if node not in connected]
        return "\n".join(lines) + "\n"

    def _mermaid_ids(self) -> dict[str, str]:
        safe = {n for n in self._nodes if _MERMAID_ID.fullmatch(n) and n != "end"}
        ids: dict[str, str] = {}
        for position, node in enumerate(self._nodes):
            if node in safe:
                ids[node] = node
                continue
            candidate = f"step_{position}"
            while candidate in safe:
                candidate += "_"
            ids[node] = candidate
        return ids

    def to_dot(self) -> str:
        """A Graphviz ``digraph`` with a comment per level, every step as a node, then the edges."""
        groups = self.by_level()
        title = _dot_quote(self.name or "tasker_template")
        lines = [f"digraph {title} {{", "    rankdir=TB;"]
        lines += [f"    // level {level}: {', '.join(group)}" for level, group in enumerate(groups)]
        lines += [f"    {_dot_quote(node)};" for node in self._nodes]
        lines += [f"    {_dot_quote(parent)} -> {_dot_quote(child)};" for parent, child in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _mermaid_node(node_id: str, label: str) -> str:
    if node_id == label:
        return node_id
    return f'{node_id}["{label.replace(chr(34), "#quot;")}"]'


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
