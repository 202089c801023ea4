"""Catalog tables: namespaces, named tasks, dependent systems, named steps and their join (§1.1-§1.6)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tasker.models.base import Base, BigId, Timestamps


class TaskNamespace(Timestamps, Base):
    """A namespace grouping named tasks (``default`` unless stated)."""

    __tablename__ = "tasker_task_namespaces"

    task_namespace_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))


class NamedTask(Timestamps, Base):
    """A workflow type: namespace + name + semver version."""

    __tablename__ = "tasker_named_tasks"
    __table_args__ = (UniqueConstraint("task_namespace_id", "name", "version"),)

    named_task_id: Mapped[int] = mapped_column(primary_key=True)
    task_namespace_id: Mapped[int] = mapped_column(ForeignKey("tasker_task_namespaces.task_namespace_id"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(16), default="0.1.0")
    description: Mapped[str | None] = mapped_column(String(255))
    configuration: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DependentSystem(Timestamps, Base):
    """An external system a step talks to (``unknown`` when not stated)."""

    __tablename__ = "tasker_dependent_systems"

    dependent_system_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))


class NamedStep(Timestamps, Base):
    """A step type, unique per dependent system."""

    __tablename__ = "tasker_named_steps"
    __table_args__ = (UniqueConstraint("dependent_system_id", "name"),)

    named_step_id: Mapped[int] = mapped_column(primary_key=True)
    dependent_system_id: Mapped[int] = mapped_column(ForeignKey("tasker_dependent_systems.dependent_system_id"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255))


class NamedTaskNamedStep(Timestamps, Base):
    """Which named steps a named task uses, with the template's per-step defaults."""

    __tablename__ = "tasker_named_tasks_named_steps"
    __table_args__ = (UniqueConstraint("named_task_id", "named_step_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    named_task_id: Mapped[int] = mapped_column(ForeignKey("tasker_named_tasks.named_task_id"))
    named_step_id: Mapped[int] = mapped_column(ForeignKey("tasker_named_steps.named_step_id"))
    skippable: Mapped[bool] = mapped_column(default=False)
    default_retryable: Mapped[bool] = mapped_column(default=True)
    default_retry_limit: Mapped[int] = mapped_column(default=3)
