"""Migrations: empty database -> head on SQLite and PostgreSQL, idempotent, no drift, and from an installed wheel."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import tasker.models
from tasker import Tasker, TaskRequest
from tasker.cli import main
from tasker.db import alembic_config
from tasker.errors import StoreError
from tests.conftest import PG_URL, service_unavailable
from tests.support.handlers import template
from tests.support.venvs import venv_with_current_packages

REPO = Path(__file__).resolve().parents[2]

#: Every table of the data model (docs/data-model.md).
TABLES = {
    "tasker_annotation_types",
    "tasker_dependent_systems",
    "tasker_named_steps",
    "tasker_named_tasks",
    "tasker_named_tasks_named_steps",
    "tasker_task_annotations",
    "tasker_task_namespaces",
    "tasker_task_transitions",
    "tasker_tasks",
    "tasker_workflow_step_edges",
    "tasker_workflow_step_transitions",
    "tasker_workflow_steps",
}


#: The database's own bookkeeping (migration 0005).
TRIGGERS = {"tasker_task_log_most_recent", "tasker_step_log_most_recent", "tasker_step_completed"}


def trigger_names(app: Tasker) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if app.db.engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with app.db.engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def downgrade(app: Tasker, revision: str) -> None:
    config = alembic_config()
    with app.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_drift(app: Tasker) -> list[object]:
    with app.db.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), tasker.models.Base.metadata))


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A brand-new PostgreSQL database (dropped afterwards), so the shared test schema is not disturbed."""
    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"tasker_migrate_test_{uuid.uuid4().hex[:8]}"
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        server.dispose()
        service_unavailable("PostgreSQL", exc)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def check_migrates_to_head(url: str) -> None:
    with Tasker(url) as app:
        assert app.db.current_revision() is None
        assert not TABLES & set(app.db.table_names())
        app.migrate()
        assert app.db.current_revision() == head_revision()
        assert set(app.db.table_names()) >= TABLES
        assert schema_drift(app) == []
        assert trigger_names(app) == TRIGGERS
        downgrade(app, "0004")
        assert trigger_names(app) == set()
        app.migrate()
        assert trigger_names(app) == TRIGGERS
        # data written between two migrations survives the second one
        app.register_task_template(template("kept", {"a": []}))
        task = app.create_task(TaskRequest(name="kept", version="1.0.0", context={"x": 1}))
        tables = app.db.table_names()
    with Tasker(url) as again:
        again.migrate()
        again.migrate()
        assert again.db.current_revision() == head_revision()
        assert again.db.table_names() == tables
        assert schema_drift(again) == []
        with again.db.read() as session:
            assert session.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1
            assert session.execute(text("SELECT COUNT(*) FROM tasker_tasks")).scalar() == 1
        again.register_task_template(template("kept", {"a": []}))
        assert again.get_task(task.task_id).name == "kept"


def test_migrate_empty_sqlite_file(tmp_path: Path) -> None:
    check_migrates_to_head(f"sqlite:///{tmp_path}/empty.db")


@pytest.mark.postgres
def test_migrate_empty_postgres_database(empty_pg_database: str) -> None:
    check_migrates_to_head(empty_pg_database)


def test_migrated_fixture_database_has_no_drift(app: Tasker) -> None:
    """The shared fixtures' databases (SQLite and PostgreSQL) are at head with no drift."""
    assert app.db.current_revision() == head_revision()
    assert set(app.db.table_names()) >= TABLES
    assert schema_drift(app) == []
    assert trigger_names(app) >= TRIGGERS


def test_cli_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    first = runner.invoke(main, ["db", "upgrade", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert head_revision() in first.output
    second = runner.invoke(main, ["db", "upgrade", "--database-url", url])
    assert second.exit_code == 0, second.output
    assert head_revision() in second.output
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_cli_db_upgrade_uses_the_environment_url(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"TASKER_DATABASE_URL": f"sqlite:///{db}"})
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_cli_db_upgrade_bad_url_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tasker", "db", "upgrade", "--database-url", "nonsense://"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nonsense" in result.stderr


# -- from an installed wheel -----------------------------------------------------------------------------------

_IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv", ".benchmarks", "*.db*"
)


def build_requirements_installed() -> bool:
    """Whether pyproject.toml's build requirements are importable here (then no isolated build is needed)."""
    try:
        setuptools_version = importlib.metadata.version("setuptools")
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return int(setuptools_version.split(".")[0]) >= 68


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_migrations_work_from_an_installed_wheel(tmp_path: Path) -> None:
    source = tmp_path / "src"  # build from a clean copy: no stale build/ directory from the working tree
    shutil.copytree(REPO, source, ignore=_IGNORE)
    wheels = tmp_path / "wheels"
    # --no-build-isolation when this interpreter has setuptools>=68 and wheel; otherwise pip builds in isolation
    isolation = ["--no-build-isolation"] if build_requirements_installed() else []
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("tasker_engine-*.whl")
    venv = tmp_path / "venv"
    python = venv_with_current_packages(venv)  # sees this interpreter's packages, even from a fresh venv
    tasker_bin = venv / "bin" / "tasker"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TASKER_DATABASE_URL")}
    db = tmp_path / "w.db"
    for _ in range(2):  # idempotent from the wheel too
        result = subprocess.run(
            [str(tasker_bin), "db", "upgrade", "--database-url", f"sqlite:///{db}"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert head_revision() in result.stdout
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    conn.close()
    assert tables >= TABLES
    assert version == [(head_revision(),)]
    probe = (
        "import json, tasker, tasker.migrations, tasker.examples.order; "
        "print(json.dumps([tasker.__file__, tasker.migrations.__file__, tasker.examples.order.__file__, "
        "str(tasker.examples.order.TEMPLATE_PATH), tasker.examples.order.TEMPLATE_PATH.exists()]))"
    )
    result = subprocess.run(
        [str(python), "-c", probe], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    *files, template_exists = json.loads(result.stdout)
    site_packages = (venv / "lib").resolve()
    for file in files:
        path = Path(file).resolve()
        assert path.is_relative_to(site_packages), f"{file} is not inside the venv"
        assert not path.is_relative_to(REPO), f"{file} resolves to the repository"
    assert template_exists
    versions = Path(files[1]).parent / "versions"
    assert any(versions.glob("0001_*.py"))


def test_an_app_writes_nothing_to_a_schema_behind_its_code(tmp_path: Path) -> None:
    """Steps' readiness relies on the schema's triggers: on a database at an earlier revision the first write
    fails with one line naming both revisions (no task half-run), and works once upgraded."""
    url = f"sqlite:///{tmp_path}/behind.db"
    with Tasker(url) as old:
        old.db.migrate("0004")
    with Tasker(url) as app:
        app.register_task_template(template("kept", {"a": [], "b": ["a"]}))
        with pytest.raises(StoreError, match=r"schema is not migrated: run tasker db upgrade \(at 0004, latest 0006\)"):
            app.create_task(TaskRequest(name="kept", version="1.0.0", context={}))
        with app.db.read() as session:
            assert session.execute(text("SELECT COUNT(*) FROM tasker_tasks")).scalar() == 0
        app.migrate()
        task = app.create_task(TaskRequest(name="kept", version="1.0.0", context={}))
        assert app.run_until_done(task.task_id) == "complete"


def test_an_app_writes_nothing_to_a_schema_newer_than_its_code(tmp_path: Path) -> None:
    """A schema migrated by a newer tasker (a revision this code does not know) is refused with its own message."""
    url = f"sqlite:///{tmp_path}/ahead.db"
    with Tasker(url) as app:
        app.migrate()
        with app.db.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with Tasker(url) as app:
        app.register_task_template(template("kept", {"a": []}))
        with pytest.raises(
            StoreError, match=r"schema is newer than this tasker: upgrade tasker \(at 9999, latest known 0006\)"
        ):
            app.create_task(TaskRequest(name="kept", version="1.0.0", context={}))
        with app.db.read() as session:
            assert session.execute(text("SELECT COUNT(*) FROM tasker_tasks")).scalar() == 0
