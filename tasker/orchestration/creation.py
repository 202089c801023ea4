"""Task creation: validate the request, then write the task, its steps and edges in one transaction."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import jsonschema
from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from tasker.config import EngineConfig
from tasker.db.prepared import Prepared
from tasker.encoding import check_json, json_size
from tasker.errors import ConfigurationError, StoreError, ValidationError
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
from tasker.models.base import utcnow
from tasker.request import TaskRequest
from tasker.templates import TaskTemplate
from tasker.views import TaskView

#: Core tables for the bulk inserts of a task's steps and edges (executemany, no ORM bulk bookkeeping).
_STEPS, _EDGES = cast(Table, WorkflowStep.__table__), cast(Table, WorkflowStepEdge.__table__)
_TASKS = cast(Table, Task.__table__)


class IdentityStrategy(Protocol):
    """Computes a task's ``identity_hash`` (unique: a duplicate request is refused)."""

    def generate_identity_hash(self, request: TaskRequest, identity_options: Mapping[str, Any]) -> str:
        """The identity hash for this request."""
        ...


class UUIDIdentity:
    """``default``: a random UUID, so requests never collide."""

    def generate_identity_hash(self, request: TaskRequest, identity_options: Mapping[str, Any]) -> str:
        return str(uuid.uuid4())


class HashIdentity:
    """``hash``: SHA-256 of the identity options (same request in the same minute = duplicate)."""

    def generate_identity_hash(self, request: TaskRequest, identity_options: Mapping[str, Any]) -> str:
        text = json.dumps(identity_options, sort_keys=False, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def identity_strategy(config: EngineConfig) -> IdentityStrategy:
    """The strategy selected by ``engine.identity_strategy``."""
    if config.identity_strategy == "hash":
        return HashIdentity()
    if config.identity_strategy == "custom":
        path = config.identity_strategy_class or ""
        try:
            module_name, _, attr = path.replace(":", ".").rpartition(".")
            cls = getattr(importlib.import_module(module_name), attr)
            strategy: IdentityStrategy = cls()
        except Exception as exc:
            raise ConfigurationError(f"Invalid identity_strategy_class: {path}: {exc}") from exc
        return strategy
    return UUIDIdentity()


def identity_options(request: TaskRequest, requested_at: datetime) -> dict[str, Any]:
    """The fields that identify a request (reference §1.7), in their fixed order."""
    return {
        "name": request.name,
        "initiator": request.initiator,
        "source_system": request.source_system,
        "context": request.context,
        "reason": request.reason,
        "bypass_steps": request.bypass_steps,
        "requested_at": requested_at.strftime("%Y-%m-%d %H:%M"),
    }


def validate_request(
    template: TaskTemplate, request: TaskRequest, max_context_bytes: int, schema: Mapping[str, Any] | None = None
) -> None:
    """Everything checked before any row is written: JSON-encodable values, context size and schema."""
    for field in ("context", "tags", "bypass_steps"):
        check_json(getattr(request, field), field)
    size = json_size(request.context)
    if size > max_context_bytes:
        raise ValidationError(
            f"context is {size} bytes as JSON, over the maximum of {max_context_bytes} (engine.max_context_bytes)",
            field="context",
        )
    validate_context(template, request.context, schema)


def validate_context(
    template: TaskTemplate, context: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> None:
    """Check the context against ``schema`` (default: the template's); ValidationError names every bad field."""
    schema = template.context_schema if schema is None else schema
    if not schema:
        return
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(context)), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    messages = []
    paths: list[str] = []
    for error in errors:
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            # one error per missing key, each naming it: the path is the key's, not its object's
            missing = [r for r in error.validator_value if r not in error.instance]
            key = next((r for r in missing if repr(r) in error.message), None)
            path = ".".join(filter(None, [path, key]))
        paths.append(path)
        messages.append(f"context.{path}: {error.message}" if path else f"context: {error.message}")
    field = paths[0] or None
    raise ValidationError(
        f"invalid context for {template.full_name}: " + "; ".join(messages), field=field, errors=messages
    )


@dataclass(frozen=True)
class CatalogIds:
    """Database ids of a template's catalog rows."""

    named_task_id: int
    named_step_ids: dict[str, int]


def _insert_ignore(session: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    dialect = session.dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(model).on_conflict_do_nothing(), list(rows))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(model).on_conflict_do_nothing(), list(rows))
    else:  # pragma: no cover - other databases are not supported
        session.execute(insert(model), list(rows))


class CatalogCache:
    """Find-or-create of namespace / named task / named steps, cached per app after first use."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, str], CatalogIds] = {}
        self._lock = threading.Lock()

    def cached(self, template: TaskTemplate) -> CatalogIds | None:
        """Ids known from an earlier committed creation."""
        return self._ids.get(template.key)

    def remember(self, template: TaskTemplate, ids: CatalogIds) -> None:
        """Record ids once the transaction that wrote them committed."""
        with self._lock:
            self._ids[template.key] = ids

    def forget(self) -> None:
        """Drop every cached id (e.g. after the schema was rebuilt)."""
        with self._lock:
            self._ids.clear()

    @staticmethod
    def ensure(session: Connection, template: TaskTemplate) -> CatalogIds:
        """Find or create every catalog row the template needs (safe under concurrent creators)."""
        _insert_ignore(session, TaskNamespace, [{"name": template.namespace_name}])
        namespace_id = session.scalar(
            select(TaskNamespace.task_namespace_id).where(TaskNamespace.name == template.namespace_name)
        )
        _insert_ignore(
            session,
            NamedTask,
            [
                {
                    "task_namespace_id": namespace_id,
                    "name": template.name,
                    "version": template.version,
                    "description": (template.description or "")[:255] or None,
                    "configuration": template.configuration,
                }
            ],
        )
        named_task_id = session.scalar(
            select(NamedTask.named_task_id).where(
                NamedTask.task_namespace_id == namespace_id,
                NamedTask.name == template.name,
                NamedTask.version == template.version,
            )
        )
        systems = sorted({template.dependent_system_for(s) for s in template.step_templates})
        _insert_ignore(session, DependentSystem, [{"name": name} for name in systems])
        system_ids = {
            name: system_id
            for name, system_id in session.execute(
                select(DependentSystem.name, DependentSystem.dependent_system_id).where(
                    DependentSystem.name.in_(systems)
                )
            )
        }
        _insert_ignore(
            session,
            NamedStep,
            [
                {
                    "dependent_system_id": system_ids[template.dependent_system_for(s)],
                    "name": s.name,
                    "description": (s.description or s.name)[:255],
                }
                for s in template.step_templates
            ],
        )
        found = {
            (system_id, name): step_id
            for system_id, name, step_id in session.execute(
                select(NamedStep.dependent_system_id, NamedStep.name, NamedStep.named_step_id).where(
                    NamedStep.dependent_system_id.in_(list(system_ids.values())),
                    NamedStep.name.in_([s.name for s in template.step_templates]),
                )
            )
        }  # one query for every step of the template
        step_ids = {
            s.name: found[(system_ids[template.dependent_system_for(s)], s.name)] for s in template.step_templates
        }
        assert named_task_id is not None
        _insert_ignore(
            session,
            NamedTaskNamedStep,
            [
                {
                    "named_task_id": named_task_id,
                    "named_step_id": step_ids[s.name],
                    "skippable": s.skippable,
                    "default_retryable": s.default_retryable,
                    "default_retry_limit": s.default_retry_limit,
                }
                for s in template.step_templates
            ],
        )
        return CatalogIds(named_task_id, step_ids)


_TASK_COLUMNS: tuple[str, ...] = (
    "named_task_id", "status", "complete", "requested_at", "initiator", "source_system", "reason", "bypass_steps",
    "tags", "context", "identity_hash", "trace_context", "run_at", "created_at", "updated_at",
)  # fmt: skip
_STEP_COLUMNS: tuple[str, ...] = (
    "task_id", "named_step_id", "name", "status", "retryable", "retry_limit", "in_process", "processed", "attempts",
    "inputs", "results", "skippable", "unsatisfied_parents", "created_at", "updated_at",
)  # fmt: skip
_EDGE_COLUMNS: tuple[str, ...] = ("from_step_id", "to_step_id", "name", "created_at", "updated_at")


#: Rows per multi-row INSERT: well under the drivers' bind-parameter limits (SQLite 32,766, PostgreSQL 65,535).
_ROWS_PER_INSERT = 200


@functools.lru_cache(maxsize=128)
def _insert_rows(table: Table, columns: tuple[str, ...], count: int, returning: tuple[str, ...]) -> Prepared:
    """One INSERT of ``count`` rows (parameters ``p_<column>_<row>``), returning ``returning`` of each row."""
    rows: list[dict[str, Any]] = [
        {column: bindparam(f"p_{column}_{i}", type_=table.c[column].type) for column in columns} for i in range(count)
    ]
    statement = insert(table).values(rows)
    return Prepared(statement.returning(*(table.c[column] for column in returning)) if returning else statement)


def _write_rows(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    returning: tuple[str, ...] = (),
) -> list[Any]:
    """Insert ``rows`` (dicts by column) in as few statements as the drivers' parameter limits allow (one round
    trip each on PostgreSQL); the ``returning`` columns of every row, in no particular order."""
    returned: list[Any] = []
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        params = {f"p_{column}_{i}": row[column] for i, row in enumerate(chunk) for column in columns}
        statement = _insert_rows(table, columns, len(chunk), returning)
        if returning:
            returned += statement.rows(connection, params)
        else:
            statement.execute(connection, params)
    return returned


def insert_task(
    connection: Connection,
    template: TaskTemplate,
    request: TaskRequest,
    ids: CatalogIds,
    identity_hash: str,
    trace_context: dict[str, Any] | None,
    requested_at: datetime,
    draft: TaskView | None = None,
) -> tuple[int, dict[str, int]]:
    """Insert the task, its steps and its edges; returns (task_id, {step name: step id}).

    ``draft`` (the task as a ``TaskHandler`` adjusted it) supplies the context and each step's
    inputs, retry limit and retryable flag.
    """
    now = utcnow()
    context = draft.context if draft is not None else request.context
    drafted = {s.name: s for s in draft.steps} if draft is not None else {}
    task = {
        "named_task_id": ids.named_task_id, "status": "pending", "complete": False, "requested_at": requested_at,
        "initiator": request.initiator, "source_system": request.source_system, "reason": request.reason,
        "bypass_steps": request.bypass_steps, "tags": request.tags, "context": context,
        "identity_hash": identity_hash, "trace_context": trace_context, "run_at": now, "created_at": now,
        "updated_at": now,
    }  # fmt: skip
    ((task_id,),) = _write_rows(connection, _TASKS, _TASK_COLUMNS, [task], returning=("task_id",))
    rows = [
        {
            "task_id": task_id,
            "named_step_id": ids.named_step_ids[s.name],
            "name": s.name,
            "status": "pending",
            "retryable": drafted[s.name].retryable if drafted else s.default_retryable,
            "retry_limit": drafted[s.name].retry_limit if drafted else s.default_retry_limit,
            "in_process": False,
            "processed": False,
            "attempts": 0,
            "inputs": drafted[s.name].inputs if drafted else {},  # the context is stored once, on the task
            "results": {},
            "skippable": s.skippable,
            "unsatisfied_parents": len(template.parents[s.name]),
            "created_at": now,
            "updated_at": now,
        }
        for s in template.step_templates
    ]
    written = _write_rows(connection, _STEPS, _STEP_COLUMNS, rows, returning=("workflow_step_id", "name"))
    step_ids = {row.name: row.workflow_step_id for row in written}
    edges = [
        {"from_step_id": step_ids[parent], "to_step_id": step_ids[s.name], "name": "provides",
         "created_at": now, "updated_at": now}
        for s in template.step_templates
        for parent in template.parents[s.name]
    ]  # fmt: skip
    _write_rows(connection, _EDGES, _EDGE_COLUMNS, edges)
    return task_id, step_ids


def translate_integrity_error(exc: IntegrityError) -> Exception:
    """A duplicate identity hash becomes a ValidationError; anything else a StoreError."""
    text = str(exc.orig).lower()
    if "identity_hash" in text:
        return ValidationError("identity_hash is identical to a request made in the last minute", field="identity_hash")
    return StoreError(f"could not create task: {exc.orig}")
