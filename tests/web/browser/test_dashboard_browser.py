"""The dashboard in a real headless Chromium against a real uvicorn server on PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tasker import Tasker, TaskRequest
from tasker.web import TokenAuth
from tests.support.handlers import template
from tests.web.browser.conftest import screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

READ_TOKEN = "read-only-token-1"
WRITE_TOKEN = "write-token-2"


def seed(app: Tasker, flag: Path) -> dict[str, Any]:
    """Three finished reports, two failed orders (a retried step, a closed gate), a failed import, a pending order."""
    order = template(
        "order_flow",
        {"validate": [], "fetch_stock": ["validate"], "charge": ["validate"], "gate": ["fetch_stock", "charge"],
         "ship": ["gate"], "notify": ["ship"]},
        {"fetch_stock": {"fail_times": 1}}, namespace="shop",
    )  # fmt: skip
    gate = next(s for s in order["step_templates"] if s["name"] == "gate")
    gate.update(handler_class="tests.web.browser.handlers:Gate", handler_config={"flag": str(flag)})
    app.register_task_template(order)
    app.register_task_template(template("nightly_report", {"extract": [], "render": ["extract"]}, namespace="ops"))
    app.register_task_template(
        template("import_batch", {"load": []}, {"load": {"fail_times": 9, "error": "permanent"}}, namespace="ops")
    )

    def run(name: str, namespace: str, context: dict[str, Any]) -> int:
        task_id = app.create_task(TaskRequest(name=name, namespace=namespace, version="1.0.0", context=context)).task_id
        app.run_until_done(task_id)
        return task_id

    reports = [run("nightly_report", "ops", {"day": d}) for d in (1, 2, 3)]
    failed = [run("order_flow", "shop", {"order_id": n, "card_token": "tok_secret_4242"}) for n in (101, 102)]
    imported = run("import_batch", "ops", {"file": "batch.csv"})
    pending = app.create_task(TaskRequest(name="order_flow", namespace="shop", version="1.0.0", context={})).task_id
    return {"reports": reports, "failed": failed, "import": imported, "pending": pending}


def rows(page: Any) -> list[int]:
    return [int(r) for r in page.locator("table.tasks tbody tr[data-task-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.taskId)"
    )]  # fmt: skip


def test_overview_filters_and_back_button(pg_app: Tasker, serve: Any, page: Any, tmp_path: Path) -> None:
    ids = seed(pg_app, tmp_path / "open")
    base = serve(pg_app)
    page.goto(base + "/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator('a.count[data-status="error"] .n')).to_have_text("3")
    expect(page.locator('a.count[data-status="complete"] .n')).to_have_text("3")
    expect(page.locator(".failures li")).to_have_count(3)
    screenshot(page, "overview")

    page.locator('a.count[data-status="error"]').click()
    expect(page).to_have_url(re.compile(r"/tasks\?status=error$"))
    assert sorted(rows(page)) == sorted([*ids["failed"], ids["import"]])
    page.fill("#f-name", "order_flow")
    page.click(".filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=error.*name=order_flow"))
    assert sorted(rows(page)) == sorted(ids["failed"])
    expect(page.locator("#f-status")).to_have_value("error")
    expect(page.locator("form.bulk button")).to_have_text("Retry all shown failed tasks (2)")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/tasks\?status=error$"))
    expect(page.locator("#f-status")).to_have_value("error")
    expect(page.locator("#f-name")).to_have_value("")
    assert len(rows(page)) == 3

    page.goto(base + "/tasks")
    assert rows(page) == sorted(rows(page), reverse=True) and len(rows(page)) == 7
    screenshot(page, "tasks")

    page.goto(base + "/tasks")
    page.fill("#f-id", str(ids["import"]))
    page.press("#f-id", "Enter")
    expect(page).to_have_url(f"{base}/tasks/{ids['import']}")


def test_failed_task_dag_waterfall_and_retry(pg_app: Tasker, serve: Any, page: Any, tmp_path: Path) -> None:
    flag = tmp_path / "open"
    ids = seed(pg_app, flag)
    task_id = ids["failed"][0]
    base = serve(pg_app)
    page.goto(f"{base}/tasks/{task_id}")
    page.keyboard.press("Tab")  # the skip link first; the DAG's nodes are links reachable by keyboard
    expect(page.locator("a.skip")).to_be_focused()
    page.locator('svg.dag a.node[data-step="gate"]').focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#step-\d+$"))
    expect(page.locator(":target")).to_have_attribute("data-step", "gate")
    header = page.locator(".task-head h1 .badge")
    expect(header).to_have_attribute("data-status", "error")
    gate = page.locator('svg.dag a.node[data-step="gate"]')
    expect(gate).to_have_attribute("data-status", "error")
    expect(gate.locator("text.state")).to_have_text("error")  # the status is written, not only coloured
    expect(page.locator('svg.dag a.node[data-step="fetch_stock"]')).to_have_attribute("data-status", "complete")
    expect(page.locator('svg.dag a.node[data-step="ship"]')).to_have_attribute("data-status", "pending")
    attempts = page.locator('table.waterfall tr[data-step="fetch_stock"]')
    expect(attempts).to_have_count(2)
    assert attempts.evaluate_all(
        "rows => rows.map(r => [r.dataset.attempt, r.querySelector('.badge').dataset.status])"
    ) == [["1", "error"], ["2", "complete"]]
    assert "hunter2" not in page.content() and "tok_secret_4242" not in page.content()
    page.locator('tr[data-step="gate"] details summary', has_text="Backtrace").click()
    expect(page.locator('tr[data-step="gate"] details pre').first).to_contain_text("PermanentError")
    screenshot(page, "task-failed")

    flag.touch()
    page.get_by_role("link", name="Retry", exact=True).click()
    expect(page.locator("h1")).to_have_text(f"Retry task {task_id}?")
    page.get_by_role("button", name=f"Retry task {task_id}").click()
    expect(page).to_have_url(f"{base}/tasks/{task_id}")
    expect(page.locator(".flash")).to_contain_text(f"task {task_id} is now pending")
    expect(header).to_have_attribute("data-status", "pending")
    assert page.locator("main").get_attribute("data-refresh") is not None

    assert pg_app.run_until_done(task_id) == "complete"
    # no reload: the live refresh brings the new state
    expect(page.locator(".task-head h1 .badge")).to_have_attribute("data-status", "complete", timeout=20_000)
    expect(page.locator('svg.dag a.node[data-step="gate"]')).to_have_attribute("data-status", "complete")
    expect(page.locator(".live-note")).to_have_text("up to date")
    screenshot(page, "task-complete")


def test_retry_all_shown_failed_tasks(pg_app: Tasker, serve: Any, page: Any, tmp_path: Path) -> None:
    ids = seed(pg_app, tmp_path / "open")
    base = serve(pg_app)
    page.goto(f"{base}/tasks?status=error&namespace=shop")
    page.get_by_role("button", name="Retry all shown failed tasks (2)").click()
    expect(page.locator("h1")).to_have_text("Retry 2 failed tasks?")
    page.get_by_role("button", name="Retry 2 tasks").click()
    expect(page).to_have_url(f"{base}/tasks?status=error&namespace=shop")
    expect(page.locator(".flash")).to_have_text("Re-queued 2 tasks, 0 refused.")
    assert rows(page) == []
    assert {pg_app.get_task(t).status for t in ids["failed"]} == {"pending"}


def test_read_only_token_sees_no_action(pg_app: Tasker, serve: Any, page: Any, tmp_path: Path) -> None:
    ids = seed(pg_app, tmp_path / "open")
    auth = TokenAuth(
        [(hashlib.sha256(READ_TOKEN.encode()).hexdigest(), ["read"]),
         (hashlib.sha256(WRITE_TOKEN.encode()).hexdigest(), ["read", "write"])]
    )  # fmt: skip
    base = serve(pg_app, auth)
    task_id = ids["failed"][0]
    page.goto(f"{base}/tasks/{task_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#token", "wrong")
    page.click("form button[type=submit]")
    expect(page.locator("#login-problem")).to_have_text("Unknown token.")
    page.fill("#token", READ_TOKEN)
    page.press("#token", "Enter")
    expect(page).to_have_url(f"{base}/tasks/{task_id}")
    expect(page.locator(".task-head h1 .badge")).to_have_attribute("data-status", "error")
    expect(page.locator(".actions a")).to_have_count(0)
    expect(page.get_by_text("Resolve…")).to_have_count(0)
    page.goto(f"{base}/tasks?status=error")
    expect(page.locator("form.bulk")).to_have_count(0)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "tasker_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and READ_TOKEN not in cookie["value"]
    page.goto(f"{base}/tasks/{task_id}/retry")
    expect(page.locator("h1")).to_have_text("Not allowed")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login")
    page.fill("#token", WRITE_TOKEN)
    page.press("#token", "Enter")
    page.goto(f"{base}/tasks/{task_id}")
    expect(page.get_by_role("link", name="Retry", exact=True)).to_be_visible()


def test_readable_at_390_pixels(pg_app: Tasker, serve: Any, browser: Any, tmp_path: Path) -> None:
    ids = seed(pg_app, tmp_path / "open")
    base = serve(pg_app)
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        for path, name in (("/", "overview-390"), ("/tasks", "tasks-390"), (f"/tasks/{ids['failed'][0]}", "task-390")):
            page.goto(base + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide at 390px"
            screenshot(page, name)
    finally:
        context.close()


def test_tasker_serve_serves_the_dashboard(tmp_path: Path, page: Any) -> None:
    """The real ``tasker serve`` process: the dashboard at ``/`` with its stylesheet and script, nothing remote."""
    import os

    import httpx
    import yaml

    from tests.cli.support import invoke
    from tests.web.test_serve import free_port, start, stop, wait_for

    url = f"sqlite:///{tmp_path}/serve.db"
    assert invoke("db", "upgrade", "--database-url", url).exit_code == 0
    templates = tmp_path / "report.yaml"
    templates.write_text(yaml.safe_dump(template("nightly_report", {"extract": [], "render": ["extract"]})))
    port = free_port()
    server = start(
        "serve", "--port", str(port), "--templates", str(templates), env={**os.environ, "TASKER_DATABASE_URL": url}
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert server.poll() is None, server.communicate()[0]
        try:
            return httpx.get(f"{base}/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, "tasker serve")
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(base + "/")
        expect(page.locator("h1")).to_have_text("Overview")
        assert page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(29, 35, 41)"
        page.get_by_role("link", name="Templates").click()
        page.get_by_role("link", name="nightly_report").click()
        expect(page.locator('svg.dag a.node[data-step="render"]')).to_have_count(1)
        assert {r.split("/")[2] for r in requested} == {f"127.0.0.1:{port}"}
        assert any(r.endswith("/static/live.js") for r in requested)
    finally:
        stop(server)
