"""One configuration for every entry point: file (``--config``/``TASKER_CONFIG``), env, flags; ``config show``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from tasker import Tasker
from tasker.cli import main
from tasker.config import ConfigFileError, load_config
from tests.cli.support import assert_one_line_error

HANDLERS = '''
from tasker import StepHandler


class Greet(StepHandler):
    def process(self, task, sequence, step):
        return {"hello": task.context["who"]}
'''

TEMPLATE = {
    "name": "greet",
    "namespace_name": "people",
    "version": "1.0.0",
    "step_templates": [{"name": "say", "handler_class": "greeters.handlers:Greet"}],
}


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose handlers live in src/ (not importable from the cwd) and templates in tasks/."""
    root = tmp_path / "proj"
    (root / "src" / "greeters").mkdir(parents=True)
    (root / "src" / "greeters" / "__init__.py").write_text("")
    (root / "src" / "greeters" / "handlers.py").write_text(HANDLERS)
    (root / "tasks").mkdir()
    (root / "tasks" / "greet.yaml").write_text(yaml.safe_dump(TEMPLATE))
    write_config(
        root / "tasker.yaml",
        {
            "database": {"url": f"sqlite:///{root / 'app.db'}"},
            "templates": {"paths": ["tasks"], "import_paths": ["src"]},  # relative to the file
            "execution": {"step_lease_seconds": 7},
        },
    )
    return root


def show(*args: str, env: dict[str, str] | None = None) -> dict:
    result = cli(*args, "config", "show", "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["settings"]


def test_precedence_is_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "tasker.yaml",
        {"database": {"url": f"sqlite:///{tmp_path}/file.db"}, "execution": {"step_lease_seconds": 10},
         "worker": {"concurrency": 2}},
    )  # fmt: skip
    env = {"TASKER_EXECUTION__STEP_LEASE_SECONDS": "20", "TASKER_CONFIG": ""}
    settings = show("--config", str(config), env=env)
    assert settings["execution.step_lease_seconds"] == {"value": 20.0, "source": "env TASKER_EXECUTION__STEP_LEASE_SECONDS"}
    assert settings["worker.concurrency"] == {"value": 2, "source": str(config)}
    assert settings["execution.max_concurrent_steps"] == {"value": 12, "source": "default"}

    # which database `db upgrade` creates: flag > env > file
    url_env = {"TASKER_DATABASE__URL": f"sqlite:///{tmp_path}/env.db"}
    assert cli("--config", str(config), "db", "upgrade").exit_code == 0
    assert cli("--config", str(config), "db", "upgrade", env=url_env).exit_code == 0
    flagged = cli("--config", str(config), "db", "upgrade", "--database-url", f"sqlite:///{tmp_path}/flag.db",
                  env=url_env)  # fmt: skip
    assert flagged.exit_code == 0, flagged.output
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["env.db", "file.db", "flag.db"]
    assert "flag.db" in flagged.stdout

    loaded = load_config(config, environ=url_env, overrides={"database.url": ("sqlite:///x.db", "flag --database-url")})
    assert loaded.config.database.url == "sqlite:///x.db"
    assert loaded.source_of(("database", "url")) == "flag --database-url"


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "t.yaml", {"worker": {"concurrency": 5}})
    settings = show(env={"TASKER_CONFIG": str(config)})
    assert settings["worker.concurrency"] == {"value": 5, "source": str(config)}


BAD_CONFIGS = [
    ({"execution": {"step_lease": 3}}, "tasker.yaml: execution.step_lease: unknown key"),
    ({"execution": {"step_lease_seconds": 0}}, "tasker.yaml: execution.step_lease_seconds: must be greater than 0"),
    ({"executor": "threads"}, "tasker.yaml: executor: must be 'inline', 'worker' or 'celery'"),
    ({"bogus_section": {}}, "tasker.yaml: bogus_section: unknown key"),
]
#: Every kind of command reads the configuration first (the database is never reached).
COMMANDS = [
    ["config", "show"], ["worker"], ["tasks", "list"], ["tasks", "show", "1"], ["tasks", "retry", "1"],
    ["tasks", "cancel", "1"], ["tasks", "create", "x"], ["steps", "resolve", "1", "a"], ["db", "upgrade"],
    ["metrics", "export"], ["metrics", "serve"], ["trace", "1"], ["demo"], ["run", "tasker.yaml"], ["serve"],
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_CONFIGS, ids=["unknown-key", "bad-value", "bad-choice", "section"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict, message: str, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "tasker.yaml", data)
    result = CliRunner().invoke(main, ["--config", "tasker.yaml", *command], catch_exceptions=False)
    assert_one_line_error(result, message, exit_code=2)


def test_bad_environment_value_and_missing_file(tmp_path: Path) -> None:
    result = cli("worker", env={"TASKER_EXECUTION__STEP_LEASE_SECONDS": "soon"})
    assert_one_line_error(
        result, "env TASKER_EXECUTION__STEP_LEASE_SECONDS: execution.step_lease_seconds: must be a valid number",
        exit_code=2,
    )  # fmt: skip
    assert_one_line_error(cli("tasks", "list", env={"TASKER_WORKER__THREADS": "2"}),
                          "env TASKER_WORKER__THREADS: worker.threads: unknown key", exit_code=2)  # fmt: skip
    missing = tmp_path / "missing.yaml"
    assert_one_line_error(cli("--config", str(missing), "tasks", "list"), f"{missing}: No such file", exit_code=2)
    assert_one_line_error(cli("tasks", "list", env={"TASKER_CONFIG": str(missing)}), "No such file", exit_code=2)
    broken = tmp_path / "broken.yaml"
    broken.write_text("execution: [\n")
    assert_one_line_error(cli("--config", str(broken), "worker"), f"{broken}: line 2: invalid YAML", exit_code=2)
    broken.write_text("- a list\n")
    assert_one_line_error(cli("--config", str(broken), "worker"), "must be a mapping of sections", exit_code=2)


def test_bad_config_in_a_real_process(tmp_path: Path) -> None:
    write_config(tmp_path / "tasker.yaml", {"execution": {"step_lease_seconds": -1}})
    done = subprocess.run(
        [sys.executable, "-m", "tasker", "--config", "tasker.yaml", "worker"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "Error: tasker.yaml: execution.step_lease_seconds: must be greater than 0"
    assert done.stdout == ""


def test_config_show_lists_sources_and_masks_secrets(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "tasker.yaml",
        {
            "database": {"url": "postgresql://tasker:s3cr3t-pw@db.internal:5432/tasker"},
            "celery": {"broker_url": "redis://:brokerpass@redis.internal:6379/0"},
            "telemetry": {"otlp_endpoint": "https://collector/v1/traces?token=abc123secret"},
        },
    )
    result = cli("--config", str(config), "config", "show")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"# config file: {config}" in text
    for secret in ("s3cr3t-pw", "brokerpass", "abc123secret"):
        assert secret not in text
    assert 'database.url' in text and "postgresql://tasker:[FILTERED]@db.internal:5432/tasker" in text
    lines = {line.split(" = ")[0].strip(): line for line in text.splitlines() if " = " in line}
    assert lines["database.url"].endswith(f"({config})")
    assert lines["execution.step_lease_seconds"].endswith("= 300.0  (default)")
    env = cli("config", "show", env={"TASKER_CELERY__QUEUE": "jobs", "TASKER_CONFIG": ""})
    assert '"jobs"  (env TASKER_CELERY__QUEUE)' in env.stdout


def test_templates_and_handler_roots_come_from_the_config(project: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # not the project: paths resolve against the config file
    config = str(project / "tasker.yaml")
    assert cli("--config", config, "db", "upgrade").exit_code == 0
    created = cli("--config", config, "tasks", "create", "greet", "--namespace", "people", "--context", '{"who": "Ada"}')
    assert created.exit_code == 0, created.output
    task_id = int(created.stdout.splitlines()[0])
    shown = json.loads(cli("--config", config, "tasks", "show", str(task_id), "--json").stdout)
    assert shown["status"] == "complete" and shown["version"] == "1.0.0"

    with Tasker.from_config(config) as app:  # the library entry point reads the same file
        assert [t.full_name for t in app.templates] == ["people.greet@1.0.0"]
        assert app.config.execution.step_lease_seconds == 7
        assert app.get_task(task_id).step("say").results == {"hello": "Ada"}


def test_metrics_commands_use_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tasker.yaml", {"metrics": {"enabled": False}})
    assert_one_line_error(cli("--config", str(config), "metrics", "export"), "metrics are disabled")
    assert cli("metrics", "export", "--format", "csv", env={"TASKER_CONFIG": ""}).exit_code == 0


def test_the_celery_app_factory_builds_from_the_config(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasker.executors import CeleryExecutor, create_celery_app, get_tasker

    monkeypatch.setenv("TASKER_CONFIG", str(project / "tasker.yaml"))
    monkeypatch.setenv("TASKER_CELERY__QUEUE", "greetings")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    celery_app = create_celery_app()
    app = get_tasker(celery_app)
    try:
        assert celery_app.conf.task_default_queue == "greetings"
        assert [t.full_name for t in app.templates] == ["people.greet@1.0.0"]
        assert app.config.execution.step_lease_seconds == 7
        assert isinstance(app.executor, CeleryExecutor) and app.executor.celery_app is celery_app
    finally:
        celery_app.tasker_process.stop()


def test_load_config_reports_the_file_of_a_nested_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"telemetry": {"tail_sampling": {"keep_ratio": 2}}})
    with pytest.raises(ConfigFileError) as caught:
        load_config(config, environ={})
    assert str(caught.value) == f"{config}: telemetry.tail_sampling.keep_ratio: must be less than or equal to 1"
