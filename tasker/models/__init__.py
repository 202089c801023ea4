"""The persistent data model (SQLAlchemy 2.0 typed ORM), reference §1.

Catalog rows (namespaces, named tasks, dependent systems, named steps) describe workflow *types*;
tasks, workflow steps and edges are *instances*; the transition tables are the audit log of every
state change. Each task and step also keeps its current ``status`` beside the log (written in the
same transaction) so readiness queries never have to scan the log.
"""

import tasker.state.states  # noqa: F401  (state names are needed by the tables' CHECK constraints)
from tasker.models.base import Base
from tasker.models.catalog import DependentSystem, NamedStep, NamedTask, NamedTaskNamedStep, TaskNamespace
from tasker.models.instances import (
    AnnotationType,
    Task,
    TaskAnnotation,
    TaskTransition,
    WorkflowStep,
    WorkflowStepEdge,
    WorkflowStepTransition,
)
from tasker.models.workers import WorkerHeartbeat

__all__ = [
    "AnnotationType",
    "Base",
    "DependentSystem",
    "NamedStep",
    "NamedTask",
    "NamedTaskNamedStep",
    "Task",
    "TaskAnnotation",
    "TaskNamespace",
    "TaskTransition",
    "WorkerHeartbeat",
    "WorkflowStep",
    "WorkflowStepEdge",
    "WorkflowStepTransition",
]
