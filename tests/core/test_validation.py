"""Bad requests and templates are refused with typed errors, identically on both backends, before any write."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, func, select

from tasker import Tasker, TaskRequest
from tasker.errors import EncodingError, TemplateError, ValidationError
from tasker.models import NamedStep, NamedTask, Task, TaskNamespace, WorkflowStep
from tasker.templates.loader import load_template_file
from tests.support.handlers import template


def _rows(app: Tasker) -> int:
    with app.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Task)) or 0) + int(
            session.scalar(select(func.count()).select_from(WorkflowStep)) or 0
        )


@pytest.mark.parametrize(
    ("context", "path", "message"),
    [
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "context.when", "datetime is not JSON-serializable"),
        ({"items": [{"qty": math.nan}]}, "context.items[0].qty", "nan is not valid JSON"),
        ({"note": "a\u0000"}, "context.note", "string contains a NUL character"),
        ({"ids": {1, 2}}, "context.ids", "set is not JSON-serializable"),
    ],
)
def test_a_context_json_cannot_hold_is_a_validation_error(
    make_app: Callable[..., Tasker], context: dict[str, Any], path: str, message: str
) -> None:
    app = make_app()
    app.register_task_template(template("t"))
    with pytest.raises(EncodingError) as caught:
        app.create_task(TaskRequest(name="t", version="1.0.0", context=context))
    assert isinstance(caught.value, ValidationError) and caught.value.field == path
    assert str(caught.value) == f"{path}: {message}"
    assert _rows(app) == 0


def test_a_context_over_the_maximum_size_is_refused(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"engine": {"max_context_bytes": 1000}})
    app.register_task_template(template("t"))
    app.create_task(TaskRequest(name="t", version="1.0.0", context={"blob": "x" * 900}))
    with pytest.raises(ValidationError, match=r"context is \d+ bytes as JSON, over the maximum of 1000") as caught:
        app.create_task(TaskRequest(name="t", version="1.0.0", context={"blob": "x" * 1000}))
    assert caught.value.field == "context"


def test_the_default_maximum_context_size_is_one_mib(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    assert app.config.engine.max_context_bytes == 1024 * 1024
    app.register_task_template(template("t"))
    with pytest.raises(ValidationError, match="over the maximum of 1048576"):
        app.create_task(TaskRequest(name="t", version="1.0.0", context={"blob": "x" * (1024 * 1024)}))


def test_the_context_is_stored_once_per_task(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("t"))
    context = {"blob": "x" * 10_000}
    task = app.create_task(TaskRequest(name="t", version="1.0.0", context=context))
    with app.db.read() as session:
        inputs = session.scalars(select(WorkflowStep.inputs).where(WorkflowStep.task_id == task.task_id)).all()
        stored = session.scalar(select(Task.context).where(Task.task_id == task.task_id))
    assert stored == context and inputs == [{}] * 4


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "n" * 65}, "name"),
        ({"name": "t", "namespace": "n" * 65}, "namespace"),
        ({"name": "t", "version": "1" * 17}, "version"),
        ({"name": "t", "initiator": "i" * 129}, "initiator"),
        ({"name": "t", "source_system": "s" * 129}, "source_system"),
        ({"name": "t", "reason": "r" * 129}, "reason"),
        ({"name": "t", "context": "not a dict"}, "context"),
        ({"name": "t", "tags": "x"}, "tags"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_request_field_is_a_validation_error_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskRequest(**fields)
    assert caught.value.field == field and field in str(caught.value)


def test_request_lengths_are_the_column_sizes() -> None:
    sizes = {
        "name": NamedTask.__table__.c.name, "namespace": TaskNamespace.__table__.c.name,
        "version": NamedTask.__table__.c.version, "initiator": Task.__table__.c.initiator,
        "source_system": Task.__table__.c.source_system, "reason": Task.__table__.c.reason,
    }  # fmt: skip
    for field, column in sizes.items():
        assert isinstance(column.type, String)
        assert TaskRequest.model_fields[field].metadata[-1].max_length == column.type.length, field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "t" * 80}, "name"),
        ({"namespace_name": "n" * 65}, "namespace_name"),
        ({"version": "1.0.0" + "0" * 12}, "version"),
        ({"default_dependent_system": "d" * 65}, "default_dependent_system"),
    ],
)
def test_an_over_long_template_is_refused_when_registered(
    make_app: Callable[..., Tasker], change: dict[str, Any], field: str
) -> None:
    app = make_app()
    with pytest.raises(TemplateError) as caught:
        app.register_task_template({**template("t"), **change})
    assert caught.value.field == field
    assert len(app.templates) == 0


def test_an_over_long_step_name_is_refused_when_registered(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    long_name = "s" * (NamedStep.__table__.c.name.type.length + 1)
    with pytest.raises(TemplateError) as caught:
        app.register_task_template(template("t", {long_name: []}))
    assert caught.value.field == "name"


def test_a_duplicate_key_in_template_yaml_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\nversion: 1.0.0\nstep_templates:\n"
        "  - name: a\n    handler_class: tests.support.handlers:Record\n    default_retry_limit: 2\n"
        "    default_retry_limit: 5\n"
    )
    with pytest.raises(TemplateError, match=r"line 7, column 5: .*duplicate key 'default_retry_limit'"):
        load_template_file(path)
