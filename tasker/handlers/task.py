"""TaskHandler: optional per-template hooks (Ruby's task handler class), named by ``task_handler_class``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasker.models.base import utcnow
from tasker.views import StepSequence, StepView, TaskView

if TYPE_CHECKING:
    from tasker.request import TaskRequest
    from tasker.templates.model import TaskTemplate

Annotator = Callable[[int, str, Mapping[str, Any]], object]


class TaskHandler:
    """Hooks around one template's tasks; subclass and name it in ``task_handler_class``.

    * :meth:`schema` is the JSON Schema the context is validated against (default: the template's);
    * :meth:`establish_step_dependencies_and_defaults` runs when a task is created, before it is
      written: changes it makes to ``task.context`` and to each step's ``inputs``, ``retry_limit`` and
      ``retryable`` are persisted in the creation transaction;
    * :meth:`update_annotations` runs once the task is complete; :meth:`annotate` records an annotation.

    A template whose Ruby task handler has no hooks can map it to this class itself through
    ``templates.handler_aliases``.
    """

    def __init__(self, template: TaskTemplate, annotator: Annotator | None = None) -> None:
        self.template = template
        self._annotator = annotator

    def schema(self) -> Mapping[str, Any] | None:
        """The JSON Schema task contexts must match (None: no validation)."""
        return self.template.context_schema

    def establish_step_dependencies_and_defaults(self, task: TaskView, steps: list[StepView]) -> None:
        """Adjust a new task before it is persisted (``task.task_id`` is 0 at this point)."""

    def update_annotations(self, task: TaskView, sequence: StepSequence, steps: list[StepView]) -> None:
        """Record annotations about a completed task (see :meth:`annotate`)."""

    def annotate(self, task: TaskView | int, annotation_type: str, data: Mapping[str, Any]) -> None:
        """Attach a JSON annotation of ``annotation_type`` to the task (``app.annotate_task``)."""
        if self._annotator is None:
            raise RuntimeError("annotate is only available while the engine runs this task handler")
        self._annotator(task if isinstance(task, int) else task.task_id, annotation_type, data)


def draft_task(template: TaskTemplate, request: TaskRequest, requested_at: datetime) -> TaskView:
    """The task about to be created, with ids 0: what ``establish_step_dependencies_and_defaults`` adjusts.

    The context is a copy of the request's; steps' ``inputs`` start empty (step-specific inputs: the
    context is stored once, on the task).
    """
    context = copy.deepcopy(request.context)
    return TaskView(
        task_id=0, name=template.name, namespace=template.namespace_name, version=template.version,
        status="pending", context=context, initiator=request.initiator, source_system=request.source_system,
        reason=request.reason, tags=list(request.tags), requested_at=requested_at, created_at=utcnow(),
        steps_total=len(template.step_templates),
        steps=[
            StepView(
                step_id=0, task_id=0, name=s.name, status="pending", attempts=0, retry_limit=s.default_retry_limit,
                retryable=s.default_retryable, results={}, inputs={}, skippable=s.skippable,
                parent_names=template.parents[s.name],
            )
            for s in template.step_templates
        ],
    )  # fmt: skip
