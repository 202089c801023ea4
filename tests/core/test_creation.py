"""Task creation: rows written, catalog reuse, context validation, one transaction, identity strategies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text

from tasker import Tasker, TaskRequest
from tasker.errors import ConfigurationError, TemplateNotFoundError, ValidationError
from tasker.events import BaseSubscriber
from tasker.models import (
    DependentSystem,
    NamedStep,
    NamedTask,
    NamedTaskNamedStep,
    Task,
    TaskNamespace,
    WorkflowStep,
    WorkflowStepEdge,
)
from tests.support.handlers import fan_out, template

REQUESTED_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "items"],
    "properties": {
        "order_id": {"type": "integer"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "price"],
                "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
            },
        },
    },
}


class PrefixIdentity:
    """A custom identity strategy (selected by ``engine.identity_strategy_class``)."""

    def generate_identity_hash(self, request: TaskRequest, identity_options: Mapping[str, Any]) -> str:
        return f"custom:{request.name}:{request.context['key']}"


def count_tables(app: Tasker) -> dict[str, int]:
    """Row count of every tasker_* table."""
    counts = {}
    with app.db.read() as session:
        for name in app.db.table_names():
            if name.startswith("tasker_"):
                counts[name] = int(session.scalar(text(f"SELECT COUNT(*) FROM {name}")))
    return counts


def rich_template(name: str = "shop") -> dict[str, Any]:
    """a -> {b, c} -> d with per-step defaults and dependent systems."""
    data = template(name, {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, retry_limit=4)
    steps = {s["name"]: s for s in data["step_templates"]}
    steps["b"].update(default_retryable=False, skippable=True, dependent_system="payments")
    steps["c"].update(default_retry_limit=7, dependent_system="inventory")
    return data


def request(name: str = "shop", **kwargs: Any) -> TaskRequest:
    values: dict[str, Any] = {"name": name, "version": "1.0.0", "context": {"order_id": 7}}
    values.update(kwargs)
    return TaskRequest(**values)


# -- rows written ---------------------------------------------------------------------------------------


def test_create_task_writes_task_steps_and_edges(app: Tasker) -> None:
    app.register_task_template(rich_template())
    ctx = {"order_id": 7, "nested": {"a": [1, 2]}}
    view = app.create_task(request(context=ctx, initiator="alice", source_system="web", reason="checkout", tags=["t1"]))
    assert view.status == "pending" and view.context == ctx
    with app.db.read() as session:
        task = session.get(Task, view.task_id)
        assert task is not None
        assert (task.status, task.complete, task.context) == ("pending", False, ctx)
        assert (task.initiator, task.source_system, task.reason, task.tags) == ("alice", "web", "checkout", ["t1"])
        assert task.bypass_steps == [] and task.identity_hash
        steps = {s.name: s for s in session.scalars(select(WorkflowStep).where(WorkflowStep.task_id == view.task_id))}
        edges = {(e.from_step_id, e.to_step_id, e.name) for e in session.scalars(select(WorkflowStepEdge))}
    assert set(steps) == {"a", "b", "c", "d"}
    expected = {  # (retry_limit, retryable, skippable)
        "a": (4, True, False),
        "b": (4, False, True),
        "c": (7, True, False),
        "d": (4, True, False),
    }
    for name, step in steps.items():
        assert (step.retry_limit, step.retryable, step.skippable) == expected[name], name
        assert step.status == "pending" and step.attempts == 0
        assert step.inputs == {} and step.results == {}  # the context is stored once, on the task
        assert step.processed is False and step.in_process is False
        assert step.processed_at is None and step.last_attempted_at is None
    ids = {name: s.workflow_step_id for name, s in steps.items()}
    assert edges == {
        (ids["a"], ids["b"], "provides"),
        (ids["a"], ids["c"], "provides"),
        (ids["b"], ids["d"], "provides"),
        (ids["c"], ids["d"], "provides"),
    }
    assert {s.name: s.step_id for s in view.steps} == ids


def test_catalog_rows_are_created_once_and_reused(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(rich_template())
    first = app.create_task(request())
    with app.db.read() as session:
        namespaces = session.scalars(select(TaskNamespace.name)).all()
        named_tasks = session.execute(select(NamedTask.name, NamedTask.version)).all()
        systems = set(session.scalars(select(DependentSystem.name)))
        named_steps = {
            name: system
            for name, system in session.execute(
                select(NamedStep.name, DependentSystem.name).join(
                    DependentSystem, DependentSystem.dependent_system_id == NamedStep.dependent_system_id
                )
            )
        }
        joins = {
            name: (j.skippable, j.default_retryable, j.default_retry_limit)
            for j, name in session.execute(
                select(NamedTaskNamedStep, NamedStep.name).join(
                    NamedStep, NamedStep.named_step_id == NamedTaskNamedStep.named_step_id
                )
            )
        }
    assert namespaces == ["default"]
    assert [tuple(r) for r in named_tasks] == [("shop", "1.0.0")]
    assert systems == {"unknown", "payments", "inventory"}
    assert named_steps == {"a": "unknown", "b": "payments", "c": "inventory", "d": "unknown"}
    assert joins == {
        "a": (False, True, 4),
        "b": (True, False, 4),
        "c": (False, True, 7),
        "d": (False, True, 4),
    }
    catalog = ("tasker_task_namespaces", "tasker_named_tasks", "tasker_dependent_systems", "tasker_named_steps",
               "tasker_named_tasks_named_steps")  # fmt: skip
    before = count_tables(app)
    second = app.create_task(request())
    # a second app on the same database (no cached catalog ids) reuses the rows too
    other = make_app()
    other.register_task_template(rich_template())
    third = other.create_task(request())
    after = count_tables(app)
    assert len({first.task_id, second.task_id, third.task_id}) == 3
    assert {k: after[k] for k in catalog} == {k: before[k] for k in catalog}
    assert after["tasker_tasks"] == before["tasker_tasks"] + 2
    assert after["tasker_workflow_steps"] == before["tasker_workflow_steps"] + 8
    with app.db.read() as session:
        assert len(set(session.scalars(select(Task.named_task_id)))) == 1


def test_template_namespace_and_default_dependent_system(app: Tasker) -> None:
    data = template("ns_task", {"x": [], "y": ["x"]}, namespace="billing", version="2.3.4")
    data["default_dependent_system"] = "ledger"
    data["step_templates"][1]["dependent_system"] = "bank"
    app.register_task_template(data)
    view = app.create_task(TaskRequest(name="ns_task", namespace="billing", version="2.3.4", context={"k": 1}))
    assert (view.namespace, view.name, view.version) == ("billing", "ns_task", "2.3.4")
    with app.db.read() as session:
        assert set(session.scalars(select(TaskNamespace.name))) == {"billing"}
        assert set(session.scalars(select(DependentSystem.name))) == {"ledger", "bank"}
    fetched = app.get_task(view.task_id)
    assert (fetched.namespace, fetched.name, fetched.version) == ("billing", "ns_task", "2.3.4")


# -- context validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"items": []}, "order_id"),  # missing required
        ({"order_id": "seven", "items": []}, "order_id"),  # wrong type
        ({"order_id": 1, "items": [{"sku": "A", "price": "cheap"}]}, "items.0.price"),  # nested wrong type
        ({"order_id": 1, "items": [{"price": 2.5}]}, "items.0.sku"),  # nested missing required
    ],
    ids=["missing", "wrong-type", "nested-type", "nested-missing"],
)
def test_context_is_validated_against_the_schema(app: Tasker, context: dict[str, Any], field: str) -> None:
    app.register_task_template(template("validated", {"a": []}, schema=ORDER_SCHEMA))
    before = count_tables(app)
    with pytest.raises(ValidationError) as info:
        app.create_task(TaskRequest(name="validated", version="1.0.0", context=context))
    assert field in str(info.value)
    assert any(field in e for e in info.value.errors)
    assert count_tables(app) == before
    assert before["tasker_tasks"] == 0 and before["tasker_task_namespaces"] == 0


def test_every_bad_field_is_named(app: Tasker) -> None:
    app.register_task_template(template("validated", {"a": []}, schema=ORDER_SCHEMA))
    with pytest.raises(ValidationError) as info:
        app.create_task(TaskRequest(name="validated", version="1.0.0", context={"order_id": "x"}))
    message = str(info.value)
    assert "order_id" in message and "items" in message


def test_valid_context_passes_the_schema(app: Tasker) -> None:
    app.register_task_template(template("validated", {"a": []}, schema=ORDER_SCHEMA))
    ctx = {"order_id": 1, "items": [{"sku": "A", "price": 2.5}]}
    view = app.create_task(TaskRequest(name="validated", version="1.0.0", context=ctx))
    assert app.get_task(view.task_id).context == ctx


# -- one transaction ----------------------------------------------------------------------------------------


def test_duplicate_identity_is_refused_and_writes_nothing(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"engine": {"identity_strategy": "hash"}})
    app.register_task_template(rich_template())
    app.create_task(request(requested_at=REQUESTED_AT))
    before = count_tables(app)
    with pytest.raises(ValidationError, match="identi"):
        app.create_task(request(requested_at=REQUESTED_AT))
    assert count_tables(app) == before


def test_duplicate_identity_without_explicit_time(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"engine": {"identity_strategy": "hash"}})
    app.register_task_template(rich_template())
    for _ in range(3):  # the same request twice in the same minute (retry if we straddled a minute)
        minute = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        first = app.create_task(request(context={"order_id": 7, "minute": minute}))
        try:
            app.create_task(request(context={"order_id": 7, "minute": minute}))
        except ValidationError as exc:
            assert "identi" in str(exc)
            assert exc.field == "identity_hash"
            break
        assert datetime.now(UTC).strftime("%Y-%m-%d %H:%M") != minute, "duplicate accepted in the same minute"
    else:
        pytest.fail("could not create two requests within one minute")
    assert app.get_task(first.task_id).status == "pending"


def test_failed_create_rolls_back_new_catalog_rows(make_app: Callable[..., Tasker]) -> None:
    """A duplicate found at insert time also undoes the catalog rows written in the same transaction."""
    first = make_app({"engine": {"identity_strategy": "hash"}})
    first.register_task_template(template("dup", {"a": []}))
    first.create_task(TaskRequest(name="dup", version="1.0.0", context={"k": 1}, requested_at=REQUESTED_AT))
    before = count_tables(first)
    # another app on the same database knows a different template under the same key: new catalog rows
    second = make_app({"engine": {"identity_strategy": "hash"}})
    data = template("dup", {"a": [], "z": ["a"]})
    data["step_templates"][1]["dependent_system"] = "brand_new_system"
    second.register_task_template(data)
    with pytest.raises(ValidationError, match="identi"):
        second.create_task(TaskRequest(name="dup", version="1.0.0", context={"k": 1}, requested_at=REQUESTED_AT))
    assert count_tables(first) == before
    with first.db.read() as session:
        assert "brand_new_system" not in set(session.scalars(select(DependentSystem.name)))


# -- identity strategies ------------------------------------------------------------------------------------


def _identity(app: Tasker, task_id: int) -> str:
    with app.db.read() as session:
        value = session.scalar(select(Task.identity_hash).where(Task.task_id == task_id))
    assert isinstance(value, str)
    return value


def test_default_identity_never_collides(app: Tasker) -> None:
    app.register_task_template(rich_template())
    one = app.create_task(request(requested_at=REQUESTED_AT))
    two = app.create_task(request(requested_at=REQUESTED_AT))
    assert one.task_id != two.task_id
    assert _identity(app, one.task_id) != _identity(app, two.task_id)


def test_hash_identity(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"engine": {"identity_strategy": "hash"}})
    app.register_task_template(rich_template())
    first = app.create_task(request(requested_at=REQUESTED_AT))
    digest = _identity(app, first.task_id)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    other = app.create_task(request(requested_at=REQUESTED_AT, initiator="bob"))
    assert _identity(app, other.task_id) != digest
    later = app.create_task(request(requested_at=REQUESTED_AT.replace(minute=5)))
    assert _identity(app, later.task_id) != digest
    # same options again (after the first row is gone): the same hash
    with app.db.transaction() as session:
        session.execute(delete(Task).where(Task.task_id == first.task_id))
    again = app.create_task(request(requested_at=REQUESTED_AT.replace(second=59)))
    assert _identity(app, again.task_id) == digest


def test_custom_identity_strategy(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"engine": {"identity_strategy": "custom", "identity_strategy_class": f"{__name__}:PrefixIdentity"}})
    app.register_task_template(rich_template())
    view = app.create_task(request(context={"order_id": 1, "key": "abc"}))
    assert _identity(app, view.task_id) == "custom:shop:abc"
    with pytest.raises(ValidationError):
        app.create_task(request(context={"order_id": 2, "key": "abc"}))


def test_custom_identity_strategy_without_class(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="identity_strategy_class"):
        Tasker(database_url, config={"engine": {"identity_strategy": "custom"}})


def test_custom_identity_strategy_class_not_found(database_url: str) -> None:
    config = {"engine": {"identity_strategy": "custom", "identity_strategy_class": f"{__name__}:NoSuchClass"}}
    with pytest.raises(ConfigurationError, match="NoSuchClass"):
        Tasker(database_url, config=config)


def test_unknown_identity_strategy(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="identity_strategy"):
        Tasker(database_url, config={"engine": {"identity_strategy": "random"}})


# -- templates ---------------------------------------------------------------------------------------------


def test_unknown_template_names_namespace_name_and_version(app: Tasker) -> None:
    app.register_task_template(template("known", {"a": []}, namespace="sales", version="1.0.0"))
    before = count_tables(app)
    with pytest.raises(TemplateNotFoundError) as info:
        app.create_task(TaskRequest(name="known", namespace="sales", version="2.0.0", context={"x": 1}))
    message = str(info.value)
    assert "sales" in message and "known" in message and "2.0.0" in message
    with pytest.raises(TemplateNotFoundError, match=r"0\.1\.0"):  # the default version: no fallback to 1.0.0
        app.create_task(TaskRequest(name="known", namespace="sales", context={"x": 1}))
    with pytest.raises(TemplateNotFoundError, match="default"):  # no fallback to another namespace
        app.create_task(TaskRequest(name="known", version="1.0.0", context={"x": 1}))
    assert count_tables(app) == before


def test_get_task_returns_steps_with_parent_names(app: Tasker) -> None:
    app.register_task_template(rich_template())
    created = app.create_task(request())
    view = app.get_task(created.task_id)
    assert [s.name for s in view.steps] == ["a", "b", "c", "d"]
    parents = {s.name: set(s.parent_names) for s in view.steps}
    assert parents == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    assert {s.name: set(s.parent_names) for s in created.steps} == parents
    step = view.step("c")
    assert (step.status, step.attempts, step.retry_limit, step.retryable, step.results) == ("pending", 0, 7, True, {})


# -- apps share nothing --------------------------------------------------------------------------------------


class Recorder(BaseSubscriber):
    subscribe_to = ("task.completed",)

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def handle_task_completed(self, event: Any) -> None:
        self.seen.append(event["task_id"])


def test_two_apps_in_one_process_share_nothing(tmp_path: Path) -> None:
    with Tasker(f"sqlite:///{tmp_path}/one.db") as one, Tasker(f"sqlite:///{tmp_path}/two.db") as two:
        one.migrate()
        two.migrate()
        one.register_task_template(template("solo", {"a": []}))
        with pytest.raises(TemplateNotFoundError):
            two.create_task(TaskRequest(name="solo", version="1.0.0", context={"x": 1}))
        assert len(one.templates) == 1 and len(two.templates) == 0
        assert one.metrics is not two.metrics
        assert one.metrics.registry is not two.metrics.registry
        assert one.events is not two.events
        rec_one, rec_two = one.subscribe(Recorder()), two.subscribe(Recorder())
        fn_calls: list[str] = []
        two.events.subscribe("task.completed", lambda event: fn_calls.append(event.name))
        task = one.create_task(TaskRequest(name="solo", version="1.0.0", context={"x": 1}))
        assert one.run_until_done(task.task_id, timeout=30) == "complete"
        assert rec_one.seen == [task.task_id]
        assert rec_two.seen == [] and fn_calls == []
        labels = {"namespace": "default", "task": "solo", "version": "1.0.0"}
        assert one.metrics.registry.get_sample_value("tasker_tasks_created_total", labels) == 1
        assert not two.metrics.registry.get_sample_value("tasker_tasks_created_total", labels)
        assert count_tables(two)["tasker_tasks"] == 0
        with one.db.read() as session:
            assert session.scalar(select(func.count()).select_from(Task)) == 1


def test_a_task_is_written_with_one_insert_per_table(app: Tasker) -> None:
    """The task, all its steps (their ids come back with them) and all its edges: three statements."""
    from sqlalchemy import event

    app.register_task_template(template("diamond"))
    app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))  # the template's catalog rows
    statements: list[str] = []
    event.listen(app.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0]))
    app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert [s for s in statements if s.upper() != "SELECT"] == ["INSERT", "INSERT", "INSERT"]
    assert len(statements) == 3


def test_a_wide_task_is_written_in_chunks_with_every_id_and_edge_right(app: Tasker) -> None:
    """More steps than one INSERT takes (200 rows): each step keeps its name, parents and children."""
    width = 450
    app.register_task_template(template("wide", fan_out(width)))
    task = app.create_task(TaskRequest(name="wide", version="1.0.0", context={}))
    view = app.get_task(task.task_id)
    assert len(view.steps) == width + 2
    parents = {step.name: sorted(step.parent_names) for step in view.steps}
    assert parents["root"] == [] and parents["m449"] == ["root"]
    assert parents["merge"] == sorted(f"m{i}" for i in range(width))
    with app.db.read() as session:
        edges = session.execute(
            select(WorkflowStepEdge.from_step_id, WorkflowStepEdge.to_step_id)
            .join(WorkflowStep, WorkflowStep.workflow_step_id == WorkflowStepEdge.to_step_id)
            .where(WorkflowStep.task_id == task.task_id)
        ).all()
        names = dict(session.execute(select(WorkflowStep.workflow_step_id, WorkflowStep.name)).all())
    assert len(edges) == 2 * width
    assert {(names[a], names[b]) for a, b in edges} == {("root", f"m{i}") for i in range(width)} | {
        (f"m{i}", "merge") for i in range(width)
    }
    assert app.run_until_done(task.task_id) == "complete"
