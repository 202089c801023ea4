"""``tasker metrics export|serve``: every format, and worker processes aggregated through the multiprocess dir."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.support import assert_one_line_error, invoke

PROBE = """\
name: probe
step_templates:
  - name: validate_order
    handler_class: tasker.examples.order.handlers:ValidateOrder
"""
CONTEXT = '{"items": [{"sku": "A", "price": 2.5, "quantity": 2}]}'
CREATED = 'tasker_tasks_created_total{namespace="default",task="probe",version="0.1.0"} 1.0'


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/metrics.db"


def test_export_prometheus(db_url: str) -> None:
    result = invoke("metrics", "export", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert re.search(r"^# TYPE tasker_tasks_created(_total)? counter$", result.stdout, re.MULTILINE)
    assert "# TYPE tasker_step_duration_seconds histogram" in result.stdout
    assert "PROMETHEUS_MULTIPROC_DIR is not set" in result.stderr


def test_export_openmetrics(db_url: str) -> None:
    result = invoke("metrics", "export", "--format", "openmetrics", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("# EOF")


def test_export_json(db_url: str) -> None:
    result = invoke("metrics", "export", "--format", "json", "--database-url", db_url)
    document = json.loads(result.stdout)
    # A fresh app has recorded nothing; the database gauges say the (never migrated) database cannot be read.
    assert [(m["name"], m["value"]) for m in document["metrics"]] == [("tasker_database_up", 0)]
    assert document["metadata"]["exporter"] == "json"


def test_export_csv_to_a_file(db_url: str, tmp_path: Path) -> None:
    output = tmp_path / "metrics.csv"
    result = invoke("metrics", "export", "--format", "csv", "--output", str(output), "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert output.read_text().splitlines()[1:] == [
        f"{output.read_text().splitlines()[1][:29]},tasker_database_up,gauge,0"
    ]
    assert f"wrote csv metrics to {output}" in result.stderr


def test_export_mistakes(db_url: str, tmp_path: Path) -> None:
    assert_one_line_error(invoke("metrics", "export", "--format", "xml"), "--format", exit_code=2)
    missing = tmp_path / "no" / "such" / "dir" / "m.json"
    assert_one_line_error(invoke("metrics", "export", "--output", str(missing), "--database-url", db_url), "m.json")


def test_serve_on_a_busy_port_is_one_line(db_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("metrics", "serve", "--port", str(port), "--database-url", db_url)
    assert_one_line_error(result, f"cannot serve metrics on 127.0.0.1:{port}")


# -- several processes ---------------------------------------------------------------------------------------


@pytest.fixture
def multiprocess_env(tmp_path: Path) -> dict[str, str]:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONUNBUFFERED": "1"}


def tasker(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasker", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def worker_ran(multiprocess_env: dict[str, str], tmp_path: Path, db_url: str) -> dict[str, str]:
    """A `tasker run` process ran one task and left its metrics in the multiprocess directory."""
    template = tmp_path / "probe.yaml"
    template.write_text(PROBE)
    done = tasker(
        "run", str(template), "--context", CONTEXT, "--database-url", db_url, env=multiprocess_env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return multiprocess_env


def test_export_aggregates_worker_processes(worker_ran: dict[str, str], tmp_path: Path, db_url: str) -> None:
    done = tasker("metrics", "export", "--database-url", db_url, env=worker_ran, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert CREATED in done.stdout
    assert done.stderr == ""  # no single-process note

    done = tasker("metrics", "export", "--format", "json", "--database-url", db_url, env=worker_ran, cwd=tmp_path)
    points = json.loads(done.stdout)["metrics"]
    created = [p for p in points if p["name"] == "tasker_tasks_created_total"]
    assert [(p["labels"]["task"], p["value"]) for p in created] == [("probe", 1.0)]


@pytest.fixture
def server(worker_ran: dict[str, str], tmp_path: Path, db_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`tasker metrics serve --port 0` running in its own process; yields it and its /metrics URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tasker", "metrics", "serve", "--port", "0", "--database-url", db_url],
        env=worker_ran, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("serving metrics on http://127.0.0.1:"), line
        yield proc, line.split()[3]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serve_exposes_worker_metrics(server: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = server
    assert url.endswith("/metrics")
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert CREATED in response.text
    assert response.headers["cache-control"].startswith("no-cache")

    openmetrics = httpx.get(url, headers={"Accept": "application/openmetrics-text"}, timeout=10)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")

    proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
