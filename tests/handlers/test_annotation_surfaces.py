"""Task annotations are listed by ``tasker tasks show`` (text and JSON) and by the HTTP API, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from tasker import Tasker, TaskRequest
from tasker.cli import main
from tasker.web import create_app
from tests.support.handlers import RECORD
from tests.web.conftest import TestClient

TEMPLATE = {"name": "noted", "version": "1.0.0", "step_templates": [{"name": "a", "handler_class": RECORD}]}


def _annotated(app: Tasker) -> int:
    app.register_task_template(TEMPLATE)
    task = app.create_task(TaskRequest(name="noted", version="1.0.0", context={"x": 1}))
    app.run_until_done(task.task_id)
    app.annotate_task(task.task_id, "fraud_check", {"score": 0.2, "api_token": "s3cret"})
    return task.task_id


def test_tasks_show_lists_annotations(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "noted.yaml").write_text(yaml.safe_dump(TEMPLATE))
    config = tmp_path / "tasker.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": database_url}, "templates": {"paths": ["tasks"]}}))
    with Tasker(database_url) as app:
        app.migrate()
        task_id = _annotated(app)
    runner = CliRunner()
    shown = runner.invoke(main, ["--config", str(config), "tasks", "show", str(task_id)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert '  fraud_check: {"api_token": "[FILTERED]", "score": 0.2}' in shown.stdout.splitlines()
    as_json = runner.invoke(main, ["--config", str(config), "tasks", "show", str(task_id), "--json"])
    [annotation] = json.loads(as_json.stdout)["annotations"]
    assert annotation["annotation_type"] == "fraud_check"
    assert annotation["data"] == {"score": 0.2, "api_token": "[FILTERED]"}
    assert annotation["created_at"]


def test_the_api_lists_annotations_of_one_task(app: Tasker) -> None:
    task_id = _annotated(app)
    with TestClient(create_app(app)) as client:
        body = client.get(f"/api/v1/tasks/{task_id}").json()["task"]
        listed = client.get("/api/v1/tasks").json()
    assert [(a["annotation_type"], a["data"]) for a in body["annotations"]] == [
        ("fraud_check", {"score": 0.2, "api_token": "[FILTERED]"})
    ]
    assert all(t.get("annotations") is None for t in listed["tasks"])
