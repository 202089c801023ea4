"""docs/metrics.md and docs/grafana-dashboard.json stay true to the catalog."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tasker.metrics import ENGINE_METRICS, render_catalog_markdown
from tests.support.docs import blocks

DOCS = Path(__file__).resolve().parents[2] / "docs"
BEGIN, END = "<!-- BEGIN GENERATED CATALOG -->\n", "<!-- END GENERATED CATALOG -->"


def test_catalog_section_is_generated() -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section == render_catalog_markdown(), "regenerate with: python -m tasker.metrics.catalog"


def dashboard() -> dict[str, Any]:
    data = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def expressions(data: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in data["panels"] for target in panel["targets"]]
    exprs += [var["definition"] for var in data["templating"]["list"] if "definition" in var]
    return exprs


def catalog_name(series: str) -> str | None:
    if series in ENGINE_METRICS:
        return series
    for suffix in ("_bucket", "_count", "_sum"):
        base = series.removesuffix(suffix)
        if base != series and base in ENGINE_METRICS and ENGINE_METRICS[base].kind == "histogram":
            return base
    return None


def test_dashboard_is_a_grafana_dashboard() -> None:
    data = dashboard()
    assert data["title"] and data["uid"] and isinstance(data["schemaVersion"], int)
    titles = {panel["title"] for panel in data["panels"]}
    assert {
        "Task throughput by status",
        "Error rate",
        "p95 step duration by step",
        "p95 queue wait",
        "Tasks in progress",
        "Backlog",
        "Oldest pending task",
        "Active workers",
        "Step timeouts",
    } <= titles
    assert len({panel["id"] for panel in data["panels"]}) == len(data["panels"])
    for panel in data["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}


def test_dashboard_queries_use_catalog_metrics() -> None:
    exprs = expressions(dashboard())
    referenced = {name for expr in exprs for name in re.findall(r"\btasker_[a-z_]+", expr)}
    assert referenced
    unknown = {name for name in referenced if catalog_name(name) is None}
    assert not unknown, f"not in the catalog: {sorted(unknown)}"
    joined = "\n".join(exprs)
    assert "histogram_quantile(0.95, sum by (le, step) (rate(tasker_step_duration_seconds_bucket" in joined
    assert "tasker_task_queue_wait_seconds_bucket" in joined
    assert "sum by (status) (rate(tasker_tasks_finished_total" in joined
    assert "tasker_tasks_in_progress" in joined


def test_python_blocks_run(tmp_path: Path, monkeypatch: Any) -> None:
    """The page's Python blocks run in order, in one namespace (``# file:`` blocks are saved, not run)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    namespace: dict[str, Any] = {"__name__": "docs_metrics"}
    try:
        for block in (b for b in blocks("metrics.md") if b.language == "python"):
            if block.filename:
                (tmp_path / block.filename).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / block.filename).write_text(block.code, encoding="utf-8")
                continue
            exec(compile(block.code, f"docs/metrics.md (line {block.line})", "exec"), namespace)
    finally:
        if "app" in namespace:
            namespace["app"].shutdown()
    assert os.path.exists(tmp_path / "tasker.db")
    assert json.loads(namespace["app"].metrics.render("json"))["metadata"]["exporter"] == "json"
