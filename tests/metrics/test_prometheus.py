"""A real deployment, scraped by a real Prometheus.

A Celery prefork pool (``dispatch_steps``, metrics through ``PROMETHEUS_MULTIPROC_DIR`` and a ``tasker metrics
serve`` sidecar) and database workers serving their own ``/metrics`` share one PostgreSQL database. After mixed
workloads, and after a worker is SIGKILLed mid-step, the database gauges equal the database's counts (never
negative); Prometheus (Debian's package, on a free loopback port) scrapes both kinds of process, and every
PromQL expression and variable query of docs/grafana-dashboard.json returns data; ``promtool check metrics``
passes on both expositions; 200 concurrent scrapes are all answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tasker import Tasker, TaskRequest
from tests.celery.conftest import WORKER_CONFIG, CeleryHarness, free_port, require_redis, wait_for
from tests.conftest import merge, service_unavailable, truncate_all
from tests.support.handlers import template

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
#: Short step leases, so a SIGKILLed worker's step is recovered within the test.
CONFIG = merge(WORKER_CONFIG, {"execution": {"step_lease_seconds": 2}})
MIXED = template("mixed", configs={"b": {"fail_times": 1}})
DOOMED = template("doomed", {"x": []}, {"x": {"fail_times": 9}}, retry_limit=2)
SLOW = template("slow", {"nap": []}, {"nap": {"sleep": 3}})
TEMPLATES = [MIXED, DOOMED, SLOW]
TERMINAL = ("complete", "error", "cancelled", "resolved_manually")


@dataclass
class Process:
    """A subprocess with its /metrics URL."""

    proc: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _start(args: list[str], env: dict[str, str], ready: Callable[[str], str | None]) -> Process:
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stream = proc.stdout if args[1] == "tests.metrics.metrics_worker" else proc.stderr
    assert stream is not None
    for _ in range(20):
        line = stream.readline()
        url = ready(line)
        if url:
            return Process(proc, url)
    proc.kill()
    raise AssertionError(f"{args} did not start: {proc.communicate(timeout=10)}")


def start_db_worker(database_url: str, env: dict[str, str]) -> Process:
    """A database worker serving /metrics (``tests/metrics/metrics_worker.py``)."""
    args = ["-m", "tests.metrics.metrics_worker", database_url, json.dumps(CONFIG), json.dumps(TEMPLATES)]
    return _start(args, env, lambda line: line.split()[1] if line.startswith("ready ") else None)


def start_sidecar(database_url: str, env: dict[str, str]) -> Process:
    """``tasker metrics serve`` over the Celery pool's multiprocess directory (and the database gauges)."""
    args = ["-m", "tasker", "metrics", "serve", "--port", "0", "--database-url", database_url]
    return _start(args, env, lambda line: line.split()[3] if line.startswith("serving metrics on ") else None)


# -- the gauges against the database ------------------------------------------------------------------------


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels -> value} of one scrape; every tasker gauge is checked to be >= 0."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
            if family.type == "gauge" and sample.name.startswith("tasker_"):
                assert sample.value >= 0, sample
    return out


def gauge_counts(url: str) -> dict[str, dict[str, float]]:
    samples = scrape(url)
    tasks: dict[str, float] = {}
    for labels, value in samples.get("tasker_tasks", {}).items():
        status = dict(labels)["status"]
        tasks[status] = tasks.get(status, 0) + value
    in_progress = sum(samples.get("tasker_tasks_in_progress", {}).values())
    steps = {dict(labels)["status"]: value for labels, value in samples.get("tasker_steps", {}).items() if value}
    return {"tasks": {s: v for s, v in tasks.items() if v}, "in_progress": {"": in_progress}, "steps": steps}


def database_counts(database_url: str) -> dict[str, dict[str, float]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tasks = dict(
                connection.execute(
                    text(
                        "SELECT status, count(*) FROM tasker_tasks WHERE status IN ('pending', 'in_progress', 'error') "
                        "GROUP BY status"
                    )
                ).all()
            )
            steps = dict(
                connection.execute(
                    text(
                        "SELECT s.status, count(*) FROM tasker_workflow_steps s JOIN tasker_tasks t "
                        "ON t.task_id = s.task_id WHERE t.status IN ('pending', 'in_progress') GROUP BY s.status"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    return {
        "tasks": {s: float(v) for s, v in tasks.items()},
        "in_progress": {"": float(tasks.get("in_progress", 0))},
        "steps": {s: float(v) for s, v in steps.items()},
    }


def assert_gauges_equal_the_database(database_url: str, *urls: str) -> dict[str, dict[str, float]]:
    """Each exporter's gauges equal the database's counts (within the collector's 5 s cache)."""
    for url in urls:
        seen: list[Any] = []

        def equal(url: str = url, seen: list[Any] = seen) -> bool:
            before = database_counts(database_url)
            gauges = gauge_counts(url)
            seen[:] = [before, gauges]
            return gauges == before == database_counts(database_url)

        try:
            wait_for(equal, timeout=20, what=f"gauges of {url} equal to the database")
        except AssertionError as exc:
            raise AssertionError(f"database vs gauges: {seen}") from exc
    return database_counts(database_url)


# -- Prometheus -------------------------------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[Any]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[Any] = body["data"]["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        response = httpx.get(f"{self.url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=10)
        values: list[str] = response.json()["data"]
        return values


@pytest.fixture
def prometheus_binaries() -> None:
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            service_unavailable(tool, FileNotFoundError("apt-get install -y prometheus"))


def start_prometheus(tmp_path: Path, targets: dict[str, str]) -> Prometheus:
    port = free_port()
    jobs = [
        {
            "job_name": job,
            "scrape_interval": "1s",
            "metrics_path": httpx.URL(url).path,
            "static_configs": [{"targets": [f"{httpx.URL(url).host}:{httpx.URL(url).port}"]}],
        }
        for job, url in targets.items()
    ]
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}))  # JSON is YAML
    proc = subprocess.Popen(
        [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    prometheus = Prometheus(f"http://127.0.0.1:{port}", proc)

    def ready() -> bool:
        try:
            return httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=30, what="Prometheus ready")
    return prometheus


def dashboard_queries() -> tuple[list[str], list[tuple[str, str]]]:
    """The panels' PromQL (variables at All, Grafana's rate interval) and the variables' label_values queries."""
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"].replace("$namespace", ".*").replace("$task", ".*").replace("$__rate_interval", "1m")
        for panel in data["panels"]
        for target in panel["targets"]
    ]
    variables = []
    for var in data["templating"]["list"]:
        if var.get("type") != "query":
            continue
        definition = var["definition"].replace("$namespace", ".*")
        inner = definition.removeprefix("label_values(").removesuffix(")")
        match, label = (part.strip() for part in inner.rsplit(",", 1))
        variables.append((match, label))
    return exprs, variables


def promtool_check(url: str) -> None:
    exposition = httpx.get(url, timeout=10).text
    checked = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def concurrent_scrapes(url: str, count: int = 200) -> float:
    """``count`` scrapes at once; all must be answered 200. Returns the p99 latency in seconds."""

    async def one(client: httpx.AsyncClient) -> float:
        start = time.perf_counter()
        response = await client.get(url)
        assert response.status_code == 200
        return time.perf_counter() - start

    async def burst() -> list[float]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(one(client) for _ in range(count)))

    with ThreadPoolExecutor(1) as thread:  # a loop of its own, whatever loop this thread may have
        latencies = sorted(thread.submit(asyncio.run, burst()).result())
    assert len(latencies) == count
    return statistics.quantiles(latencies, n=100)[98]


# -- the deployment -----------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(pg_schema: str, tmp_path: Path, prometheus_binaries: None) -> Iterator[dict[str, Any]]:
    require_redis()
    truncate_all(pg_schema)
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    harness = CeleryHarness(pg_schema, tmp_path)
    started: list[Process] = []
    try:
        harness.start_worker(TEMPLATES, config=CONFIG, dispatch=True, env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
        started.append(start_sidecar(pg_schema, {**env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}))
        started.append(start_db_worker(pg_schema, env))
        producer = harness.producer(TEMPLATES, config=CONFIG, dispatch=True)
        plain = Tasker(pg_schema, config=CONFIG)  # tasks only the database workers see
        for tmpl in TEMPLATES:
            plain.register_task_template(tmpl)
        yield {
            "url": pg_schema, "harness": harness, "producer": producer, "plain": plain, "env": env,
            "sidecar": started[0], "worker": started[1], "started": started, "tmp_path": tmp_path,
        }  # fmt: skip
        plain.shutdown()
    finally:
        for process in started:
            process.stop()
        harness.close()


def _create(app: Tasker, tmpl: dict[str, Any]) -> int:
    return app.create_task(TaskRequest(name=tmpl["name"], version=tmpl["version"], context={})).task_id


def test_gauges_stay_true_and_prometheus_has_every_dashboard_query(deployment: dict[str, Any]) -> None:
    url, producer, plain, env = deployment["url"], deployment["producer"], deployment["plain"], deployment["env"]
    sidecar, worker = deployment["sidecar"], deployment["worker"]

    # Mixed workloads: through Celery with dispatched steps, and straight to the database workers.
    ids = [_create(producer, MIXED) for _ in range(6)] + [_create(plain, MIXED) for _ in range(6)]
    ids += [_create(producer, DOOMED), _create(plain, DOOMED)]
    wait_for(lambda: all(plain.get_task(i).status in TERMINAL for i in ids), timeout=120, what="tasks finished")
    assert_gauges_equal_the_database(url, sidecar.url, worker.url)
    workers = scrape(sidecar.url)["tasker_workers_active"]
    assert workers[(("kind", "celery"),)] == 2 and workers[(("kind", "worker"),)] == 1  # heartbeats

    # A worker SIGKILLed mid-step: whatever the database holds (in_progress until the lease expires, then
    # recovered by a Celery pass), the gauges say the same; no +1 is left behind by the dead process.
    slow = _create(plain, SLOW)
    wait_for(lambda: plain.get_task(slow).steps[0].status == "in_progress", timeout=30, what="slow step running")
    worker.proc.kill()
    worker.proc.wait(timeout=10)
    assert_gauges_equal_the_database(url, sidecar.url)
    # The step is recovered once its lease expired (by a Celery pass or the next database worker) and re-run.
    replacement = start_db_worker(url, env)
    deployment["started"].append(replacement)
    wait_for(lambda: plain.get_task(slow).status == "complete", timeout=60, what="slow task recovered")
    # Work for the new worker, of each template that ran before: the killed worker may have run all of a template's
    # earlier tasks (a database worker can claim a task before its Celery message is delivered), and the scraped
    # processes list the templates they ran.
    more = [_create(plain, MIXED) for _ in range(2)] + [_create(plain, DOOMED)]
    wait_for(lambda: all(plain.get_task(i).status in TERMINAL for i in more), timeout=60, what="more tasks finished")
    assert plain.get_task(slow).steps[0].attempts == 2
    assert_gauges_equal_the_database(url, sidecar.url, replacement.url)
    timeouts = [sum(scrape(u).get("tasker_step_timeouts_total", {}).values()) for u in (sidecar.url, replacement.url)]
    assert sum(timeouts) == 1, timeouts

    # Prometheus scrapes a database worker and the Celery pool's exporter.
    prometheus = start_prometheus(deployment["tmp_path"], {"worker": replacement.url, "celery": sidecar.url})
    try:
        wait_for(
            lambda: {r["metric"]["job"] for r in prometheus.query("up == 1")} == {"worker", "celery"},
            timeout=30, what="both targets up",
        )  # fmt: skip
        exprs, variables = dashboard_queries()
        empty: list[str] = []

        def all_have_data() -> bool:
            empty[:] = [expr for expr in exprs if not prometheus.query(expr)]
            empty.extend(
                f"{label} of {match}" for match, label in variables if not prometheus.label_values(label, match)
            )
            return not empty

        try:
            wait_for(all_have_data, timeout=60, what="every dashboard query has data")
        except AssertionError as exc:
            raise AssertionError(f"no data for: {empty}") from exc
        # The variables list the templates from the scraped processes alone (no producer is scraped).
        assert {"mixed", "doomed", "slow"} <= set(prometheus.label_values("task", "tasker_tasks_created_total"))
        for job in ("worker", "celery"):  # both kinds of process provide the variables' metric
            assert prometheus.query(f'tasker_tasks_created_total{{job="{job}"}}'), job
    finally:
        prometheus.proc.terminate()
        prometheus.proc.wait(timeout=20)

    for target in (replacement.url, sidecar.url):
        promtool_check(target)
        p99 = concurrent_scrapes(target)
        print(f"200 concurrent scrapes of {target}: all answered, p99 {p99 * 1000:.0f} ms")
