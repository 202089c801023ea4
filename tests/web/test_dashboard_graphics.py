"""The dashboard's drawings: DAG layout by level, waterfall queue waits, hourly chart slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasker.web.pages.graphics import NODE_WIDTH, layout_dag, throughput_bars, waterfall
from tasker.web.schemas import TraceSpan

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def span(step: str, attempt: int, start: float, end: float, status: str = "complete") -> TraceSpan:
    return TraceSpan(
        name=f"step {step} #{attempt}", kind="step", span_id=f"{step}{attempt}", parent_span_id="t", start=at(start),
        end=at(end), duration_seconds=end - start, status=status, step_name=step, attempt=attempt,
    )  # fmt: skip


def test_dag_columns_are_levels_and_children_follow_their_parents() -> None:
    dag = layout_dag(
        [("a", []), ("x", []), ("b", ["x"]), ("c", ["a"]), ("d", ["b", "c"])], {"a": "complete", "d": "error"}
    )
    nodes = {n.name: n for n in dag.nodes}
    assert {n: nodes[n].level for n in nodes} == {"a": 0, "x": 0, "b": 1, "c": 1, "d": 2}
    assert nodes["c"].y < nodes["b"].y  # c's parent a is above b's parent x
    assert nodes["d"].x == nodes["c"].x + NODE_WIDTH + 56
    assert len(dag.edges) == 4 and dag.levels == 3
    svg = str(dag.svg({"d": "#step-9"}, "DAG"))
    assert 'href="#step-9" class="node s-error" data-step="d" data-status="error"' in svg
    assert ">error</text>" in svg and ">✗</tspan>" in svg  # status in words and glyph, not only colour
    assert 'class="node" data-step="b"' in svg  # no status: a template's step


def test_dag_escapes_step_names() -> None:
    svg = str(layout_dag([('<b>"x"', [])], {'<b>"x"': "pending"}).svg({}, "t"))
    assert "<b>" not in svg and "&lt;b&gt;&#34;x&#34;" in svg


def test_waterfall_waits_and_retries() -> None:
    task = TraceSpan(name="task", kind="task", span_id="t", parent_span_id="e", start=T0, end=at(10),
                     duration_seconds=10, status="complete")  # fmt: skip
    spans = [task, span("a", 1, 1, 2), span("b", 1, 3, 4, "error"), span("b", 2, 6, 7), span("c", 1, 8, 10)]
    bars, total = waterfall(spans, {"a": [], "b": ["a"], "c": ["a", "b"]})
    assert total == 10
    waits = {(b.step, b.attempt): b.wait for b in bars if b.kind == "step"}
    # a waited since the task's creation, b since a finished, b's retry since its failed attempt, c since b
    assert waits == {("a", 1): 1.0, ("b", 1): 1.0, ("b", 2): 2.0, ("c", 1): 1.0}
    retry = next(b for b in bars if b.attempt == 2)
    assert (retry.wait_x, retry.wait_width, retry.x, retry.width) == (400.0, 200.0, 600.0, 100.0)


def test_throughput_has_24_hourly_slots_ending_now() -> None:
    hours = [(T0 - timedelta(hours=2), 3, 1), (T0, 1, 0)]
    bars = throughput_bars(hours, T0 + timedelta(minutes=30))
    assert len(bars) == 24 and bars[-1].hour == T0 and bars[0].hour == T0 - timedelta(hours=23)
    peak = bars[-3]
    assert (peak.completed, peak.failed, peak.completed_height, peak.failed_height) == (3, 1, 75.0, 25.0)
