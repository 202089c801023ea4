"""Generated code as a whole: it type-checks strictly, and the generators work from an installed wheel."""

from __future__ import annotations

import configparser
import fnmatch
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import REPO, assert_pytest_passes, invoke, ruff_failures
from tests.support.venvs import venv_with_current_packages

GENERATORS = REPO / "generators"


def build_requirements_installed() -> bool:
    """Whether setuptools>=68 and wheel are importable here (then the wheel builds without isolation)."""
    try:
        setuptools_version = importlib.metadata.version("setuptools")
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return int(setuptools_version.split(".")[0]) >= 68


def generate_everything(root: Path) -> None:
    """Every generator, into one project."""
    for args in (
        ["generate", "task-handler", "order_flow", "--directory", str(root)],
        ["generate", "subscriber", "alerts", "--events", "task.completed,step.failed,workflow.no_viable_steps",
         "--directory", str(root / "subscribers"), "--tests-directory", str(root / "tests" / "subscribers")],
        ["generate", "subscriber", "shop_metrics", "--metrics", "--events", "step.completed,step.failed,step.retry_requested",
         "--directory", str(root / "subscribers"), "--tests-directory", str(root / "tests" / "subscribers")],
        ["generate", "events", "--directory", str(root / "config" / "events"),
         "--subscribers-directory", str(root / "subscribers"), "--tests-directory", str(root / "tests" / "subscribers")],
        ["generate", "authenticator", "partner_api", "--directory", str(root / "auth"),
         "--tests-directory", str(root / "tests" / "auth")],
    ):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 0, result.output


def test_templates_are_packaged() -> None:
    """Everything the generators read is a .j2 file the wheel ships (setup.cfg package_data)."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in config["options.package_data"]["tasker.generators"].split(",")]
    files = [p.relative_to(GENERATORS).as_posix() for p in (GENERATORS / "templates").rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert file.endswith(".j2"), file
        assert any(fnmatch.fnmatch(file, pattern) for pattern in patterns), file
    # Only the generators package itself is listed in setup.cfg: no sub-packages.
    assert not [p for p in GENERATORS.rglob("__init__.py") if p.parent != GENERATORS]


def test_everything_together_lints_and_passes(tmp_path: Path) -> None:
    root = tmp_path / "all"
    generate_everything(root)
    assert ruff_failures(root) == []
    assert_pytest_passes(root, 7)


@pytest.mark.slow
def test_generated_code_type_checks_strictly(tmp_path: Path) -> None:
    root = tmp_path / "typed"
    generate_everything(root)
    # MYPYPATH: the source tree's tasker (installed in editable mode); only the generated code is checked.
    env = {**os.environ, "MYPYPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--explicit-package-bases", "--follow-imports", "silent",
         "--cache-dir", str(tmp_path / "cache"), "."],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generators_work_from_an_installed_wheel(tmp_path: Path) -> None:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv", "*.db*")
    shutil.copytree(REPO, source, ignore=ignore)
    wheels = tmp_path / "wheels"
    isolation = ["--no-build-isolation"] if build_requirements_installed() else []
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("tasker_engine-*.whl")
    venv = tmp_path / "venv"
    python = venv_with_current_packages(venv)  # sees this interpreter's packages, even from a fresh venv
    tasker_bin = venv / "bin" / "tasker"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr

    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("PYTEST_")}
    for args in (
        ["generate", "task-handler", "order_flow"],
        ["generate", "subscriber", "alerts"],
        ["generate", "events"],
    ):
        done = subprocess.run(
            [str(tasker_bin), *args], cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run(
        [str(python), "-c", "import tasker.generators as g; print(g.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve()), where.stdout + where.stderr
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert tests.returncode == 0 and "3 passed" in tests.stdout, tests.stdout + tests.stderr
    # what `tasker generate --help` promises, as a user would run it on the project
    typed = subprocess.run(
        [str(python), "-m", "mypy", "--strict", "--explicit-package-bases", "--cache-dir", str(tmp_path / "mypy"), "."],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stdout + typed.stderr
