"""Task annotations (Ruby's ``task_annotations``): typed JSON notes attached to a task."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tasker.db import Database
from tasker.errors import TaskNotFoundError, ValidationError
from tasker.models import Task
from tasker.models.base import utcnow
from tasker.models.instances import AnnotationType, TaskAnnotation
from tasker.views import AnnotationView

__all__ = ["annotate_task", "task_annotations"]

MAX_TYPE_LENGTH = 64


def annotate_task(db: Database, task_id: int, annotation_type: str, data: Mapping[str, Any]) -> AnnotationView:
    """Record ``data`` (a JSON object) as an annotation of ``annotation_type`` on the task."""
    if not isinstance(annotation_type, str) or not annotation_type.strip() or len(annotation_type) > MAX_TYPE_LENGTH:
        raise ValidationError(
            f"annotation_type must be a non-empty string of at most {MAX_TYPE_LENGTH} characters, "
            f"got {annotation_type!r}",
            field="annotation_type",
        )
    if not isinstance(data, Mapping):
        raise ValidationError(f"annotation data must be a mapping, got {type(data).__name__}", field="data")
    try:
        payload = json.loads(json.dumps(dict(data)))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"annotation data is not JSON serialisable: {exc}", field="data") from exc
    now = utcnow()
    with db.transaction() as session:
        if session.scalar(select(Task.task_id).where(Task.task_id == task_id)) is None:
            raise TaskNotFoundError(task_id)
        type_id = _type_id(session, annotation_type) or _create_type(session, annotation_type, now)
        session.execute(
            insert(TaskAnnotation).values(
                task_id=task_id, annotation_type_id=type_id, annotation=payload, created_at=now, updated_at=now
            )
        )
    return AnnotationView(annotation_type, payload, now)


def task_annotations(session: Session, task_id: int) -> list[AnnotationView]:
    """The task's annotations, oldest first."""
    rows = session.execute(
        select(AnnotationType.name, TaskAnnotation.annotation, TaskAnnotation.created_at)
        .join(AnnotationType, AnnotationType.annotation_type_id == TaskAnnotation.annotation_type_id)
        .where(TaskAnnotation.task_id == task_id)
        .order_by(TaskAnnotation.task_annotation_id)
    )
    return [AnnotationView(name, data, created_at) for name, data, created_at in rows]


def _type_id(session: Session, name: str) -> int | None:
    return session.scalar(select(AnnotationType.annotation_type_id).where(AnnotationType.name == name))


def _create_type(session: Session, name: str, now: datetime) -> int:
    """Insert the type unless a concurrent creator did (unique name), then read its id."""
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        dialect_insert(AnnotationType).values(name=name, created_at=now, updated_at=now).on_conflict_do_nothing()
    )
    found = _type_id(session, name)
    assert found is not None
    return found
