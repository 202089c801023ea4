"""Task templates: the YAML format, its validation, the per-app registry and DAG analysis."""

from tasker.templates.graph import TemplateGraph
from tasker.templates.loader import import_handler, load_templates, parse_template
from tasker.templates.model import CustomEventSpec, StepTemplate, TaskTemplate
from tasker.templates.registry import TemplateRegistry

__all__ = [
    "CustomEventSpec",
    "StepTemplate",
    "TaskTemplate",
    "TemplateGraph",
    "TemplateRegistry",
    "import_handler",
    "load_templates",
    "parse_template",
]
