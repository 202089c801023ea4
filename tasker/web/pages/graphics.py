"""Server-side drawings of the dashboard: DAG layout and SVG, trace waterfall rows and the throughput chart.

Geometry over the API's models (no database); the Jinja templates place the waterfall and chart rows.
Status is carried by a glyph and a text label as well as a colour, so it is never shown by colour alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from tasker.state.states import COMPLETED_STATES
from tasker.templates.graph import TemplateGraph
from tasker.web.schemas import TraceSpan

__all__ = ["STATUS_GLYPHS", "Bar", "Dag", "DagEdge", "DagNode", "HourBar", "layout_dag", "throughput_bars", "waterfall"]

#: A glyph per status, shown next to its name everywhere a status appears.
STATUS_GLYPHS = {
    "pending": "○",
    "in_progress": "▶",
    "complete": "✓",
    "error": "✗",
    "cancelled": "⊘",
    "resolved_manually": "✎",
}

NODE_WIDTH = 176
NODE_HEIGHT = 46
GAP_X = 56
GAP_Y = 14
PAD = 6
#: Characters of a step name shown in a node (the full name is its tooltip and in the step table).
LABEL_CHARS = 22


@dataclass(frozen=True)
class DagNode:
    """A step box: its name, shortened label, status (None in a template) and top-left corner."""

    name: str
    label: str
    status: str | None
    level: int
    x: int
    y: int

    @property
    def state(self) -> str:
        """The status in words."""
        return (self.status or "").replace("_", " ")

    @property
    def glyph(self) -> str:
        """The status's glyph."""
        return STATUS_GLYPHS.get(self.status or "", "•")


@dataclass(frozen=True)
class DagEdge:
    """A dependency arrow from ``parent`` to ``child`` as an SVG path."""

    parent: str
    child: str
    path: str


@dataclass(frozen=True)
class Dag:
    """A laid-out DAG: levels are columns, left to right."""

    width: int
    height: int
    nodes: list[DagNode]
    edges: list[DagEdge]
    levels: int

    def svg(self, hrefs: dict[str, str], label: str) -> Markup:
        """The SVG: an arrow per edge and a link per node (glyph, name and status in words, status class).

        Written here rather than in a Jinja macro: a 200-step DAG is a thousand elements, and every name is
        escaped once.
        """
        out = [
            f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="group" aria-label="{escape(label)}">'
            '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
            'orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>'
        ]
        names = {node.name: escape(node.name) for node in self.nodes}
        out += [f'<path class="edge" d="{e.path}" marker-end="url(#arrow)"/>' for e in self.edges]
        for node in self.nodes:
            name, x, y = names[node.name], node.x, node.y
            href = escape(hrefs.get(node.name, "#"))
            box = f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6"/>'
            if node.status is None:
                out.append(
                    f'<a href="{href}" class="node" data-step="{name}" aria-label="{name}"><title>{name}</title>{box}'
                    f'<text x="{x + 10}" y="{y + 28}" class="name">{escape(node.label)}</text></a>'
                )
                continue
            status, state = escape(node.status), escape(node.state)
            out.append(
                f'<a href="{href}" class="node s-{status}" data-step="{name}" data-status="{status}" '
                f'aria-label="{name}: {state}"><title>{name} ({state})</title>{box}'
                f'<text x="{x + 10}" y="{y + 19}" class="name"><tspan class="glyph">{node.glyph}</tspan> '
                f'{escape(node.label)}</text><text x="{x + 10}" y="{y + 37}" class="state">{state}</text></a>'
            )
        out.append("</svg>")
        return Markup("\n".join(out))


def _label(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def layout_dag(steps: Iterable[tuple[str, Sequence[str]]], statuses: dict[str, str] | None = None) -> Dag:
    """Columns by dependency level; within a column, steps ordered by their parents' mean row (fewer crossings)."""
    graph = TemplateGraph.from_dependencies(steps)
    groups = graph.by_level()
    row: dict[str, float] = {}
    for level, group in enumerate(groups):
        if level:
            group.sort(key=lambda n: sum(row[p] for p in graph.dependencies(n)) / len(graph.dependencies(n)))
        for index, node in enumerate(group):
            row[node] = index
    tallest = max((len(g) for g in groups), default=0)
    height = PAD * 2 + tallest * NODE_HEIGHT + max(tallest - 1, 0) * GAP_Y
    width = PAD * 2 + len(groups) * NODE_WIDTH + max(len(groups) - 1, 0) * GAP_X
    corner: dict[str, tuple[int, int]] = {}
    nodes = []
    for level, group in enumerate(groups):
        column = len(group) * NODE_HEIGHT + max(len(group) - 1, 0) * GAP_Y
        top = PAD + (height - 2 * PAD - column) // 2
        for index, name in enumerate(group):
            x, y = PAD + level * (NODE_WIDTH + GAP_X), top + index * (NODE_HEIGHT + GAP_Y)
            corner[name] = (x, y)
            nodes.append(DagNode(name, _label(name), (statuses or {}).get(name), level, x, y))
    edges = []
    for parent, child in graph.edges:
        (px, py), (cx, cy) = corner[parent], corner[child]
        x1, y1, x2, y2 = px + NODE_WIDTH, py + NODE_HEIGHT // 2, cx - 2, cy + NODE_HEIGHT // 2
        bend = (x2 - x1) // 2
        edges.append(DagEdge(parent, child, f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"))
    nodes.sort(key=lambda n: (n.level, n.y))
    return Dag(width=width, height=height, nodes=nodes, edges=edges, levels=len(groups))


#: Width of a waterfall bar's coordinate space (the SVG scales it to the column).
SCALE = 1000.0


@dataclass(frozen=True)
class Bar:
    """A waterfall row: a span's bar and, before it, the time it waited to start (queue wait)."""

    label: str
    kind: str
    status: str
    step: str | None
    attempt: int | None
    offset: float | None
    duration: float | None
    wait: float | None
    x: float
    width: float
    wait_x: float
    wait_width: float
    error: str | None


def waterfall(spans: Sequence[TraceSpan], depends_on: dict[str, list[str]]) -> tuple[list[Bar], float]:
    """The task span and one row per step attempt, with the total duration (seconds) of the time axis.

    A step attempt waits from the moment it could start (its previous attempt ended, or its last
    dependency finished, or the task was created) until it started; that wait is drawn before its bar.
    """
    task = next(s for s in spans if s.kind == "task")
    origin = task.start
    assert origin is not None
    end = max([origin, *(t for s in spans for t in (s.start, s.end) if t is not None)])
    total = max((end - origin).total_seconds(), 1e-3)

    def at(moment: datetime) -> float:
        return round((moment - origin).total_seconds() * SCALE / total, 1)

    finished: dict[str, datetime] = {}
    previous: dict[str, datetime] = {}
    bars = []
    steps = sorted((s for s in spans if s.kind == "step"), key=lambda s: (s.start is None, s.start or origin))
    for span in [task, *steps]:
        start, stop = span.start, span.end
        ready = origin
        if span.kind == "step" and span.step_name is not None:
            parents = [finished[p] for p in depends_on.get(span.step_name, []) if p in finished]
            ready = max([previous.get(span.step_name, origin), *parents])
            if stop is not None:
                previous[span.step_name] = stop
                if span.status in COMPLETED_STATES:
                    finished[span.step_name] = stop
        wait = max((start - ready).total_seconds(), 0.0) if start is not None else None
        run_end = stop or (end if start is not None else None)
        bars.append(
            Bar(
                label=span.name, kind=span.kind, status=span.status, step=span.step_name, attempt=span.attempt,
                offset=(start - origin).total_seconds() if start is not None else None,
                duration=span.duration_seconds, wait=wait if span.kind == "step" else None,
                x=at(start) if start is not None else 0.0,
                width=max(round(at(run_end) - at(start), 1), 2.0) if start is not None and run_end is not None else 0.0,
                wait_x=at(min(ready, start)) if start is not None else 0.0,
                wait_width=round(at(start) - at(min(ready, start)), 1) if start is not None and span.kind == "step" else 0.0,
                error=span.error,
            )
        )  # fmt: skip
    return bars, total


@dataclass(frozen=True)
class HourBar:
    """One hour of the throughput chart: tasks completed and failed, and the bar heights (0-100)."""

    hour: datetime
    completed: int
    failed: int
    completed_height: float
    failed_height: float


def throughput_bars(hours: Iterable[tuple[datetime, int, int]], until: datetime, count: int = 24) -> list[HourBar]:
    """``count`` hourly bars ending with the hour of ``until`` (hours without data are zero)."""
    last = until.replace(minute=0, second=0, microsecond=0)
    slots = [last - timedelta(hours=count - 1 - i) for i in range(count)]
    seen = {hour: (done, failed) for hour, done, failed in hours}
    peak = max([1, *(done + failed for done, failed in seen.values())])
    bars = []
    for hour in slots:
        done, failed = seen.get(hour, (0, 0))
        bars.append(HourBar(hour, done, failed, 100.0 * done / peak, 100.0 * failed / peak))
    return bars
