"""``tasker generate task-handler``: a task template, its step handlers and an end-to-end test.

Layout, relative to ``--directory`` (the project root, where pytest runs)::

    config/tasks/<name>.yaml     the template; handler_class = "<name>.handlers:<Step>Handler"
    <name>/__init__.py           the package holding the handlers
    <name>/handlers.py           one StepHandler per step, each reading its predecessor's results
    tests/test_<name>.py         registers the YAML, runs a task on SQLite, checks every step completed
    conftest.py                  (only when missing) lets pytest import <name> from the project root
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .core import (
    GeneratedFile,
    Generation,
    GeneratorError,
    absolute,
    camel_case,
    check_name,
    check_package_name,
    conftest_file,
    path_from_test,
    render,
    run_from,
)

#: Steps of a generated template when ``--steps`` is not given (reference §9.2).
DEFAULT_STEPS = ("fetch_data", "process_data", "complete_task")

_STEP = re.compile(r"^[a-z][a-z0-9_]*$")
_SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class StepInfo:
    """One generated step: its name, handler class, description and the step it depends on."""

    name: str
    class_name: str
    description: str
    previous: str | None


def _steps(names: Sequence[str]) -> list[StepInfo]:
    steps: list[StepInfo] = []
    classes: dict[str, str] = {}
    for name in names:
        if not _STEP.match(name):
            raise GeneratorError(
                f"invalid step name {name!r}: use lower-case letters, digits and underscores (e.g. fetch_data)"
            )
        class_name = camel_case(name) + "Handler"
        if class_name in classes:
            raise GeneratorError(f"steps {classes[class_name]!r} and {name!r} would both be handled by {class_name}")
        classes[class_name] = name
        description = name.replace("_", " ").capitalize() + " step"
        steps.append(StepInfo(name, class_name, description, steps[-1].name if steps else None))
    return steps


def task_handler_files(
    name: str,
    *,
    namespace: str = "default",
    version: str = "0.1.0",
    steps: Sequence[str] = (),
    description: str | None = None,
    directory: str | os.PathLike[str] = ".",
) -> Generation:
    """The template, handler package, test and root conftest of a chain of ``steps`` (see the module doc)."""
    snake = check_package_name(check_name(name, "task handler"), "task handler")
    if not _NAMESPACE.match(namespace):
        raise GeneratorError(f"invalid namespace {namespace!r}: use up to 64 letters, digits, '_', '-' or '.'")
    if not _SEMVER.match(version):
        raise GeneratorError(f"invalid version {version!r}: use MAJOR.MINOR.PATCH, e.g. 0.1.0")
    step_names = list(steps) or list(DEFAULT_STEPS)
    if len(set(step_names)) != len(step_names):
        raise GeneratorError(f"duplicate step names in {', '.join(step_names)}")
    step_infos = _steps(step_names)

    root = absolute(directory)
    template_file = root / "config" / "tasks" / f"{snake}.yaml"
    package = root / snake
    tests_dir = root / "tests"
    test_file = tests_dir / f"test_{snake}.py"
    context = {
        "name": snake,
        "namespace": namespace,
        "version": version,
        "description": description or f"Generated task handler for {snake}",
        "steps": step_infos,
        "template_path": path_from_test(tests_dir, template_file),
        "template_display": template_file.relative_to(root).as_posix(),
    }
    notes = [
        f"template {namespace}.{snake}@{version}: {' -> '.join(step_names)}",
        f"run it:   {run_from(root)}tasker run {template_file.relative_to(root)} --context '{{\"input_id\": 1}}'",
        f"test it:  {run_from(root)}python -m pytest tests/test_{snake}.py",
    ]
    return Generation(
        files=[
            GeneratedFile(template_file, render("task_template.yaml.j2", **context)),
            GeneratedFile(package / "__init__.py", render("task_package_init.py.j2", **context)),
            GeneratedFile(package / "handlers.py", render("task_handlers.py.j2", **context)),
            GeneratedFile(test_file, render("test_task.py.j2", **context)),
            conftest_file(root),
        ],
        notes=notes,
    )
