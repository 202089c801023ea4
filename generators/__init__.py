"""Code generators run by ``tasker generate`` (installed as ``tasker.generators``).

Each generator checks its input and renders Jinja2 templates (``templates/*.j2``) into a
:class:`Generation` without touching the disk; :func:`write_files` writes it, refusing to overwrite
existing files unless forced. Generated code passes ``ruff check`` and ``mypy --strict``, and its tests
run a real ``Tasker`` app on SQLite.
"""

from .authenticator import authenticator_files
from .core import GeneratedFile, Generation, GeneratorError, WrittenFile, write_files
from .custom_events import EXAMPLE_EVENTS, custom_events_files
from .subscriber import DEFAULT_EVENTS, DEFAULT_METRICS_EVENTS, subscriber_files
from .task_handler import DEFAULT_STEPS, task_handler_files

__all__ = [
    "DEFAULT_EVENTS",
    "DEFAULT_METRICS_EVENTS",
    "DEFAULT_STEPS",
    "EXAMPLE_EVENTS",
    "GeneratedFile",
    "Generation",
    "GeneratorError",
    "WrittenFile",
    "authenticator_files",
    "custom_events_files",
    "subscriber_files",
    "task_handler_files",
    "write_files",
]
