"""``GET /api/v1/tasks`` (filters, keyset pages) and ``POST .../retry``, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from tasker import Tasker
from tasker.state.states import STATES
from tasker.web.routes.tasks import Status
from tests.web.conftest import TestClient, create
from tests.web.test_api import error


def pages(client: TestClient, **params: Any) -> list[list[int]]:
    """Every page of the listing, following ``next_after``."""
    out: list[list[int]] = []
    after = None
    while True:
        query = {**params, **({"after": after} if after else {})}
        body = client.get("/api/v1/tasks", params=query).json()
        out.append([t["task_id"] for t in body["tasks"]])
        after = body["next_after"]
        if after is None:
            return out
        assert after == out[-1][-1]
        assert len(out) < 100, "pagination does not end"


def test_pages_cover_every_task_once_newest_first(client: TestClient, tasker_app: Tasker) -> None:
    ids = [create(tasker_app) for _ in range(23)]
    got = pages(client, limit=5)
    assert [len(p) for p in got] == [5, 5, 5, 5, 3]
    flat = [i for p in got for i in p]
    assert flat == sorted(ids, reverse=True)
    assert [len(p) for p in pages(client, limit=23)] == [23]  # exactly one full page: no empty page after it


def test_tasks_created_while_paging_neither_duplicate_nor_shift(client: TestClient, tasker_app: Tasker) -> None:
    ids = [create(tasker_app) for _ in range(12)]
    first = client.get("/api/v1/tasks", params={"limit": 4}).json()
    newer = [create(tasker_app) for _ in range(5)]
    rest = pages(client, limit=4, after=first["next_after"])
    seen = [t["task_id"] for t in first["tasks"]] + [i for p in rest for i in p]
    assert seen == sorted(ids, reverse=True) and not set(newer) & set(seen)


def test_combined_filters(client: TestClient, tasker_app: Tasker) -> None:
    done = [create(tasker_app) for _ in range(3)]
    for task_id in done:
        tasker_app.run_until_done(task_id)
    pending = create(tasker_app)
    old_chain = create(tasker_app, "chain", namespace="ops", version="1.0.0")
    new_chain = create(tasker_app, "chain", namespace="ops", version="1.1.0")
    failed = create(tasker_app, "failing")
    tasker_app.run_until_done(failed)

    def ids(**params: Any) -> list[int]:
        return [i for p in pages(client, limit=2, **params) for i in p]

    assert ids(status="complete") == sorted(done, reverse=True)
    assert ids(status="pending") == [new_chain, old_chain, pending]
    assert ids(status="pending", namespace="ops") == [new_chain, old_chain]
    assert ids(status="pending", namespace="ops", name="chain", version="1.0.0") == [old_chain]
    assert ids(namespace="ops", status="complete") == []
    assert ids(name="failing", status="error") == [failed]
    listed = client.get("/api/v1/tasks", params={"status": "error"}).json()["tasks"][0]
    assert listed["steps"] is None and listed["steps_total"] == 2 and listed["steps_complete"] == 0
    assert "hunter2" not in listed["last_error"] and "[FILTERED]" in listed["last_error"]
    now = datetime.now(UTC)
    assert len(ids(since=(now - timedelta(hours=1)).isoformat())) == 7
    assert ids(until=(now - timedelta(hours=1)).isoformat()) == []
    assert ids(since=(now + timedelta(hours=1)).isoformat(), status="pending") == []


def test_bad_filters_are_422(client: TestClient) -> None:
    for params in (
        {"status": "bogus"}, {"limit": 0}, {"limit": 501}, {"after": 0}, {"after": "x"},
        {"since": "2026-01-01T00:00:00"}, {"until": "yesterday"},
    ):  # fmt: skip
        details = error(client.get("/api/v1/tasks", params=params), 422, "validation_error")["details"]
        assert details[0]["field"] == next(iter(params))
    assert get_args(Status) == STATES


def test_retry_a_failed_task(client: TestClient, tasker_app: Tasker) -> None:
    failed = create(tasker_app, "failing")
    assert tasker_app.run_until_done(failed) == "error"
    task = client.post(f"/api/v1/tasks/{failed}/retry").json()["task"]
    assert task["status"] == "pending"
    assert {s["name"]: s["status"] for s in task["steps"]} == {"boom": "pending", "after": "pending"}
    error(client.post(f"/api/v1/tasks/{failed}/retry"), 409, "conflict")
    done = create(tasker_app)
    tasker_app.run_until_done(done)
    error(client.post(f"/api/v1/tasks/{done}/retry"), 409, "conflict")
    cancelled = create(tasker_app)
    tasker_app.cancel_task(cancelled)
    error(client.post(f"/api/v1/tasks/{cancelled}/retry"), 409, "conflict")
    error(client.post("/api/v1/tasks/999999/retry"), 404, "not_found")
