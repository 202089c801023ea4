"""The terminal waterfall of a task's spans."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tasker.telemetry import render_waterfall
from tests.support.handlers import template
from tests.telemetry.conftest import Traced, new_provider

MS = 1_000_000


def test_bars_are_drawn_to_scale() -> None:
    provider, exporter = new_provider()
    tracer = provider.get_tracer("t")
    root = tracer.start_span("root", start_time=0)
    with trace.use_span(root, end_on_exit=False):
        child = tracer.start_span("child", start_time=50 * MS)
        child.set_status(Status(StatusCode.ERROR, "x"))
        child.end(end_time=100 * MS)
    root.end(end_time=100 * MS)
    lines = render_waterfall(exporter.get_finished_spans(), width=20, ascii=True).splitlines()
    assert lines[0].startswith("trace ") and lines[0].endswith("2 spans  100.0 ms")
    assert lines[1] == "root    |####################|  100.0 ms"
    assert lines[2] == "  child |..........##########|   50.0 ms  ERROR x"  # the span's error message
    provider.shutdown()


def test_a_task_renders_in_tree_order(traced: Traced) -> None:
    traced.run(template("diamond", configs={"b": {"fail_times": 1}}))
    text = render_waterfall(traced.spans(), width=40)
    labels = [line.split("|")[0].rstrip() for line in text.splitlines()[1:]]
    assert labels[:3] == ["enqueue", "  task diamond", "    step a #1"]
    assert sorted(labels[3:5]) == ["    step b #1", "    step c #1"]
    assert labels[5:] == ["    step b #2", "    step d #1"]
    assert text.count("ERROR") == 1
    assert all(len(line.split("|")[1]) == 40 for line in text.splitlines()[1:])


def test_no_spans() -> None:
    assert render_waterfall([]) == "(no spans)"
