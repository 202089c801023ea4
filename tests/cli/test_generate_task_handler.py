"""``tasker generate task-handler``: a template, its handlers and a test that passes as generated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tasker import Tasker, TaskRequest
from tasker.templates import load_templates
from tests.cli.support import FAST, assert_one_line_error, assert_pytest_passes, invoke, ruff_failures


def test_default_steps_layout_and_passing_test(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    result = invoke("generate", "task-handler", "order_process", "--directory", str(root))
    assert result.exit_code == 0, result.output
    for relative in (
        "config/tasks/order_process.yaml",
        "order_process/__init__.py",
        "order_process/handlers.py",
        "tests/test_order_process.py",
        "conftest.py",
    ):
        assert (root / relative).is_file(), relative
        assert relative in result.stdout

    data = yaml.safe_load((root / "config" / "tasks" / "order_process.yaml").read_text())
    assert (data["name"], data["namespace_name"], data["version"]) == ("order_process", "default", "0.1.0")
    steps = data["step_templates"]
    assert [s["name"] for s in steps] == ["fetch_data", "process_data", "complete_task"]
    assert [s["handler_class"] for s in steps] == [
        "order_process.handlers:FetchDataHandler",
        "order_process.handlers:ProcessDataHandler",
        "order_process.handlers:CompleteTaskHandler",
    ]
    assert [s.get("depends_on_step") for s in steps] == [None, "fetch_data", "process_data"]
    assert data["schema"]["required"] == ["input_id"]

    assert ruff_failures(root) == []
    assert_pytest_passes(root, 1)
    assert_pytest_passes(root, 1, safe_path=True)  # handler_class resolves through the generated conftest.py


def test_custom_steps_namespace_and_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "shop"
    result = invoke(
        "generate", "task-handler", "Checkout", "--namespace", "ecommerce", "--version", "2.1.0",
        "--steps", "validate,charge", "--steps", "ship", "--description", 'Take "payment" & ship',
        "--directory", str(root),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ecommerce.checkout@2.1.0: validate -> charge -> ship" in result.stdout
    assert_pytest_passes(root, 1)
    assert ruff_failures(root) == []

    # The template also runs in this process once the project root is importable.
    monkeypatch.syspath_prepend(str(root))
    (template,) = load_templates(root / "config" / "tasks" / "checkout.yaml")
    assert template.description == 'Take "payment" & ship'
    assert [(s.name, s.all_dependencies()) for s in template.step_templates] == [
        ("validate", []),
        ("charge", ["validate"]),
        ("ship", ["charge"]),
    ]
    with Tasker(f"sqlite:///{tmp_path}/t.db", config=FAST) as app:
        app.migrate()
        app.register_task_template(template)
        task = app.create_task(
            TaskRequest(name="checkout", namespace="ecommerce", version="2.1.0", context={"input_id": 5})
        )
        assert app.run_until_done(task.task_id, timeout=30) == "complete"
        assert app.get_task(task.task_id).step("ship").results == {
            "input_id": 5,
            "steps_done": ["validate", "charge", "ship"],
        }
    for name in [m for m in sys.modules if m == "checkout" or m.startswith("checkout.")]:
        del sys.modules[name]


def test_single_step(tmp_path: Path) -> None:
    root = tmp_path / "one"
    assert (
        invoke("generate", "task-handler", "ping", "--steps", "ping_service", "--directory", str(root)).exit_code == 0
    )
    assert ruff_failures(root) == []
    assert_pytest_passes(root, 1)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["order-process"], ("invalid task handler name",)),
        (["json"], ("shadow the 'json' module",)),
        (["tasker"], ("shadow the 'tasker' module",)),
        (["flow", "--steps", "Fetch-Data"], ("invalid step name 'Fetch-Data'",)),
        (["flow", "--steps", "a,b,a"], ("duplicate step names",)),
        (["flow", "--steps", "a_b,a__b"], ("would both be handled by ABHandler",)),
        (["flow", "--version", "1.0"], ("invalid version '1.0'",)),
        (["flow", "--namespace", "bad namespace"], ("invalid namespace",)),
    ],
)
def test_bad_input_is_refused(project: Path, args: list[str], fragments: tuple[str, ...]) -> None:
    assert_one_line_error(invoke("generate", "task-handler", *args), *fragments)
    assert not any(project.iterdir())


def test_existing_files_are_kept_unless_forced(project: Path) -> None:
    assert invoke("generate", "task-handler", "flow").exit_code == 0
    handlers = project / "flow" / "handlers.py"
    handlers.write_text("# mine\n")
    assert_one_line_error(invoke("generate", "task-handler", "flow"), "refusing to overwrite", "--force")
    assert handlers.read_text() == "# mine\n"
    result = invoke("generate", "task-handler", "flow", "--force")
    assert result.exit_code == 0, result.output
    assert "class FetchDataHandler(StepHandler):" in handlers.read_text()
