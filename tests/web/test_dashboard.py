"""The dashboard's pages as HTML on SQLite and PostgreSQL: status codes, masking, CSRF, auth, 404s."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tasker import Tasker
from tasker.web import TokenAuth
from tests.support.handlers import template
from tests.web.conftest import TestClient, create

READER, WRITER = "reader-token-1", "writer-token-2"


def tokens() -> TokenAuth:
    return TokenAuth(
        [(hashlib.sha256(READER.encode()).hexdigest(), ["read"]),
         (hashlib.sha256(WRITER.encode()).hexdigest(), ["read", "write"])]
    )  # fmt: skip


def html(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found[1]


def failed_task(app: Tasker) -> int:
    """A ``failing`` task run to ``error`` (its step leaks a password in the error message)."""
    task_id = create(app, "failing")
    assert app.run_until_done(task_id) == "error"
    return task_id


def test_every_page_renders(client: TestClient, tasker_app: Tasker) -> None:
    task_id = failed_task(tasker_app)
    create(tasker_app, "diamond")
    pages = {
        "/": "Tasks by status", "/tasks": "Retry all shown failed tasks (1)", f"/tasks/{task_id}": "Trace waterfall",
        "/templates": "chain", "/templates/ops/chain": "ops.chain@1.1.0", "/templates/ops/chain?version=1.0.0":
        "ops.chain@1.0.0", "/events": "task.completed", f"/tasks/{task_id}/retry": f"Retry task {task_id}?",
        f"/tasks/{task_id}/cancel": f"Cancel task {task_id}?",
    }  # fmt: skip
    for path, text in pages.items():
        response = client.get(path)
        assert text in html(response), path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert client.get("/login", follow_redirects=False).status_code == 303  # nothing to log in to
    assert client.get("/static/live.js").status_code == 200
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
    assert not any(
        p == "/" or p.startswith(("/tasks", "/templates", "/events"))
        for p in client.get("/openapi.json").json()["paths"]
    )


def test_overview_counts_and_failures(client: TestClient, tasker_app: Tasker) -> None:
    task_id = failed_task(tasker_app)
    create(tasker_app, "diamond")
    page = html(client.get("/"))
    assert re.search(r'href="/tasks\?status=error" class="count s-error" data-status="error"><span class="n">1<', page)
    assert re.search(r'data-status="pending"><span class="n">1<', page)
    assert f'href="/tasks/{task_id}"' in page
    assert "password=[FILTERED]" in page and "hunter2" not in page and "s3cret" not in page
    assert 'data-refresh="3"' in page  # a pending task: the counts refresh


def test_task_page_dag_steps_waterfall(make_app: Callable[..., Tasker], make_client: Callable[..., TestClient]) -> None:
    app = make_app()
    app.register_task_template(
        template("flaky", {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, {"b": {"fail_times": 1}})
    )
    task_id = create(app, "flaky")
    assert app.run_until_done(task_id) == "complete"
    page = html(make_client().get(f"/tasks/{task_id}"))
    nodes = re.findall(r'class="node s-(\w+)" data-step="(\w)"', page)
    assert sorted(nodes, key=lambda n: n[1]) == [("complete", s) for s in "abcd"]
    assert len(re.findall(r'class="edge"', page)) == 4
    attempts = re.findall(r'data-step="b" data-attempt="(\d)"', page)
    assert attempts == ["1", "2"]
    assert "boom on attempt 1" in page
    assert "data-refresh" not in page  # finished: nothing to refresh
    assert f'href="/tasks/{task_id}/retry"' not in page  # complete: nothing to retry


def test_masking_of_context_results_errors_and_backtraces(client: TestClient, tasker_app: Tasker) -> None:
    leaky = create(tasker_app, "leaky", {"password": "pw-in-context", "note": "token=abc123secret"})
    tasker_app.run_until_done(leaky)
    failed = failed_task(tasker_app)
    pages = html(client.get(f"/tasks/{leaky}")) + html(client.get(f"/tasks/{failed}")) + html(client.get("/tasks"))
    for secret in ("pw-in-context", "sk-live-123", "hunter2", "s3cret"):
        assert secret not in pages, secret
    assert "Backtrace" in pages and "PermanentError" in pages


def test_unknown_things_are_404_pages(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app, "diamond")
    for path in ("/tasks/999999", "/tasks/999999/retry", f"/tasks/{task_id}/steps/999999/resolve",
                 "/templates/nope/nothing", "/templates/default/diamond?version=9.9.9"):  # fmt: skip
        assert "Not found" in html(client.get(path), 404), path
    for path in ("/tasks/abc", "/tasks/0", f"/tasks/{2**63}", f"/tasks/{task_id}/steps/0/resolve"):
        assert "Invalid request" in html(client.get(path), 422), path
    assert html(client.get("/tasks/1/explode"), 422)


def test_list_filters_paging_and_search(client: TestClient, tasker_app: Tasker) -> None:
    ids = [create(tasker_app, "diamond") for _ in range(55)]
    chain = create(tasker_app, "chain", namespace="ops", version="1.1.0")
    failed = failed_task(tasker_app)

    def shown(page: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr data-task-id="(\d+)"', page)]

    first = html(client.get("/tasks"))
    assert shown(first) == [failed, chain, *ids[::-1]][:50]
    older = re.search(r'href="(/tasks\?after=\d+)" rel="next"', first)
    assert older
    second = html(client.get(older[1]))
    assert shown(second) == ids[::-1][48:] and 'rel="next"' not in second
    assert shown(html(client.get("/tasks?status=error"))) == [failed]
    assert shown(html(client.get("/tasks?namespace=ops&name=chain"))) == [chain]
    assert shown(html(client.get("/tasks?status=pending&name=chain&namespace=ops"))) == [chain]
    assert shown(html(client.get("/tasks?since=2000-01-01T00:00&until=2000-01-02T00:00"))) == []
    assert len(shown(html(client.get("/tasks?since=2000-01-01T00:00:00%2B00:00")))) == 50
    assert "not a date" in html(client.get("/tasks?since=yesterday"), 422)
    assert "unknown status" in html(client.get("/tasks?status=bogus"), 422)
    jump = client.get(f"/tasks?id={chain}", follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == f"/tasks/{chain}"
    assert html(client.get("/tasks?id=abc"), 422)


def test_actions_need_the_csrf_token(client: TestClient, tasker_app: Tasker) -> None:
    task_id = failed_task(tasker_app)
    token = csrf_of(html(client.get(f"/tasks/{task_id}/retry")))
    for data, headers in (({}, {}), ({"csrf": "forged"}, {}), ({"csrf": token}, {"Origin": "https://evil.example"})):
        assert "reload the page" in html(client.post(f"/tasks/{task_id}/retry", data=data, headers=headers), 403)
    assert tasker_app.get_task(task_id).status == "error"
    outsider = TestClient(client.app)  # no CSRF cookie: a token copied from elsewhere is useless
    html(outsider.post(f"/tasks/{task_id}/retry", data={"csrf": token}), 403)
    done = client.post(f"/tasks/{task_id}/retry", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/tasks/{task_id}"
    assert tasker_app.get_task(task_id).status == "pending"
    assert f"Retry: task {task_id} is now pending." in html(client.get(done.headers["location"]))
    assert "is now pending" not in html(client.get(f"/tasks/{task_id}"))  # the message is shown once


def test_refused_actions_are_409_pages(client: TestClient, tasker_app: Tasker) -> None:
    task_id = create(tasker_app, "diamond")
    assert tasker_app.run_until_done(task_id) == "complete"
    token = csrf_of(html(client.get(f"/tasks/{task_id}/cancel")))
    assert "Not possible now" in html(client.post(f"/tasks/{task_id}/retry", data={"csrf": token}), 409)
    assert "Not possible now" in html(client.post(f"/tasks/{task_id}/cancel", data={"csrf": token}), 409)
    step = tasker_app.get_task(task_id).steps[0].step_id
    assert html(client.post(f"/tasks/{task_id}/steps/{step}/resolve", data={"csrf": token}), 409)


def test_cancel_and_resolve(client: TestClient, tasker_app: Tasker) -> None:
    pending = create(tasker_app, "diamond")
    token = csrf_of(html(client.get(f"/tasks/{pending}/cancel")))
    client.post(f"/tasks/{pending}/cancel", data={"csrf": token})
    assert tasker_app.get_task(pending).status == "cancelled"
    failed = failed_task(tasker_app)
    boom = tasker_app.get_task(failed).step("boom").step_id
    assert "Resolve boom" in html(client.get(f"/tasks/{failed}/steps/{boom}/resolve"))
    resolved = client.post(f"/tasks/{failed}/steps/{boom}/resolve", data={"csrf": token})
    assert "Resolved a step" in html(resolved)
    assert tasker_app.get_task(failed).step("boom").status == "resolved_manually"


def test_retry_all_shown_failed_tasks(client: TestClient, tasker_app: Tasker) -> None:
    failed = [failed_task(tasker_app) for _ in range(3)]
    complete = create(tasker_app, "diamond")
    tasker_app.run_until_done(complete)
    listing = html(client.get("/tasks?status=error"))
    assert "Retry all shown failed tasks (3)" in listing
    query = "&".join(f"ids={i}" for i in failed) + "&back=%2Ftasks%3Fstatus%3Derror"
    confirm = html(client.get(f"/tasks/retry?{query}"))
    assert "Retry 3 failed tasks?" in confirm
    data = {"ids": [*failed, complete], "csrf": csrf_of(confirm), "back": "/tasks?status=error"}
    done = client.post("/tasks/retry", data=data, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/tasks?status=error"
    assert "Re-queued 3 tasks, 1 refused." in html(client.get(done.headers["location"]))
    assert {tasker_app.get_task(i).status for i in failed} == {"pending"}
    elsewhere = client.post("/tasks/retry", data={**data, "back": "https://evil.example/"}, follow_redirects=False)
    assert elsewhere.headers["location"] == "/"  # never a redirect off the site


def test_login_session_and_read_only(make_client: Callable[..., TestClient], tasker_app: Tasker) -> None:
    task_id = failed_task(tasker_app)
    client = make_client(auth=tokens())
    bounced = client.get(f"/tasks/{task_id}", follow_redirects=False)
    assert bounced.status_code == 303 and bounced.headers["location"] == f"/login?next=/tasks/{task_id}"
    form = html(client.get("/login?next=/tasks"))
    token = csrf_of(form)
    assert "Unknown token." in html(client.post("/login", data={"token": "nope", "csrf": token}), 401)
    html(client.post("/login", data={"token": READER}), 403)  # the login form needs its CSRF token too
    logged = client.post("/login", data={"token": READER, "csrf": token, "next": "/tasks"}, follow_redirects=False)
    assert logged.status_code == 303 and logged.headers["location"] == "/tasks"
    cookie = logged.headers["set-cookie"]
    assert "tasker_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert READER not in cookie
    page = html(client.get(f"/tasks/{task_id}"))
    assert f"/tasks/{task_id}/retry" not in page and "Resolve" not in page
    assert "Retry all shown" not in html(client.get("/tasks?status=error"))
    assert "Not allowed" in html(client.get(f"/tasks/{task_id}/retry"), 403)
    html(client.post(f"/tasks/{task_id}/retry", data={"csrf": token}), 403)
    assert tasker_app.get_task(task_id).status == "error"
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/tasks", follow_redirects=False).status_code == 303  # the session is gone

    writer = make_client(auth=tokens())
    assert f"/tasks/{task_id}/retry" in html(
        writer.get(f"/tasks/{task_id}", headers={"Authorization": f"Bearer {WRITER}"})
    )


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"]
)
def test_login_never_redirects_off_site(make_client: Callable[..., TestClient], target: str) -> None:
    client = make_client(auth=tokens())
    token = csrf_of(html(client.get("/login")))
    response = client.post("/login", data={"token": READER, "csrf": token, "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_trace_link_from_the_configured_template(make_app: Callable[..., Tasker], make_client: Any) -> None:
    from tasker.web import create_app

    app = make_app({"web": {"trace_url_template": "https://jaeger.example/trace/{trace_id}"}})
    app.register_task_template(template("one", {"a": []}))
    task_id = create(app, "one")
    trace_id = app.get_task(task_id).trace_id
    assert trace_id
    with TestClient(create_app(app)) as client:
        page = html(client.get(f"/tasks/{task_id}"))
    assert f'href="https://jaeger.example/trace/{trace_id}"' in page


def test_documented_configuration(make_app: Callable[..., Tasker], monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/dashboard.md: its YAML gives a read-write and a read-only login, and a trace link."""
    import yaml

    from tasker.web import create_app
    from tests.support.docs import blocks

    (block,) = [b for b in blocks("dashboard.md") if b.language == "yaml"]
    monkeypatch.setenv("TASKER_DASHBOARD_TOKEN", "dash-secret")
    monkeypatch.setenv("TASKER_VIEWER_TOKEN", "view-secret")
    app = make_app(yaml.safe_load(block.code))
    app.register_task_template(template("one", {"a": []}))
    task_id = create(app, "one")
    for token, actions in (("dash-secret", True), ("view-secret", False)):
        with TestClient(create_app(app)) as client:
            form = client.get("/login")
            html(client.post("/login", data={"token": token, "csrf": csrf_of(html(form)), "next": f"/tasks/{task_id}"}))
            page = html(client.get(f"/tasks/{task_id}"))
            assert (f"/tasks/{task_id}/cancel" in page) is actions
            assert f'href="https://jaeger.example.com/trace/{app.get_task(task_id).trace_id}"' in page


def test_documented_trace_url_templates() -> None:
    """Every trace link template of docs/dashboard.md formats into a URL holding the trace id."""
    from tests.support.docs import DOCS

    text = (DOCS / "dashboard.md").read_text(encoding="utf-8")
    templates = re.findall(r"^\| [^|]+ \| `(https://[^`]+)` \|$", text, re.MULTILINE)
    assert len(templates) == 4
    for url in templates:
        filled = url.format(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
        assert "4bf92f3577b34da6a3ce929d0e0e4736" in filled and "{" not in filled.replace('{"', "")
