"""``/api/v1/templates`` and ``/api/v1/events``: what the app can run and what it publishes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tasker.errors import TemplateNotFoundError
from tasker.web.deps import Context, requires
from tasker.web.errors import ERROR_RESPONSES
from tasker.web.presenter import Presenter
from tasker.web.schemas import EventDescription, EventList, TemplateDetail, TemplateList

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.get(
    "/templates", tags=["templates"], dependencies=[Depends(requires("template", "read"))], summary="List templates"
)
def list_templates(context: Context) -> TemplateList:
    """Every registered template, by namespace, name and version."""
    return TemplateList(templates=[Presenter.template_summary(t) for t in context.tasker.templates.list()])


@router.get(
    "/templates/{namespace}/{name}",
    tags=["templates"],
    dependencies=[Depends(requires("template", "read"))],
    summary="Read a template",
)
def get_template(
    namespace: str,
    name: str,
    context: Context,
    version: Annotated[str | None, Query(description="Default: the highest registered version")] = None,
) -> TemplateDetail:
    """Steps, DAG (nodes, edges, levels) and a Mermaid flowchart of a template."""
    registry = context.tasker.templates
    if version is None:
        versions = registry.versions(namespace, name)
        if not versions:
            raise TemplateNotFoundError(namespace, name, "*")
        version = versions[-1]
    return Presenter.template_detail(registry.get(namespace, name, version))


@router.get("/events", tags=["events"], dependencies=[Depends(requires("event", "read"))], summary="Event catalog")
def list_events(context: Context) -> EventList:
    """Every event the app can publish (system and custom), with the JSON schema of its payload."""
    return EventList(
        events=[
            EventDescription(
                name=spec.name, category=spec.category, description=spec.description,
                fired_by=list(spec.fired_by), payload_schema=spec.json_schema(),
            )
            for spec in context.tasker.events.catalog
        ]
    )  # fmt: skip
