"""Fixtures for the Celery executor tests: real ``celery worker`` processes on Redis (or RabbitMQ) and PostgreSQL.

Each test gets its own queue, so a message left over from one test never reaches another test's worker; the
queue's Redis keys are deleted at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tasker import Tasker
from tasker.executors.celery import CeleryExecutor, create_celery_app
from tests.conftest import service_unavailable, truncate_all

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TASKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TASKER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
FILE_RECORD = "tests.support.handlers:FileRecord"
#: Zero retry backoff; a fast sweep so lost messages are re-sent within a test's time budget.
WORKER_CONFIG: dict[str, Any] = {
    "backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0},
    "celery": {"sweep_interval_seconds": 0.5, "sweep_grace_seconds": 1.0, "store_retry_backoff_max_seconds": 0.5},
}


def wait_for(predicate: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    """Poll ``predicate`` every 20 ms until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g}s")
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_redis(url: str = REDIS_URL) -> None:
    """Skip locally (fail in CI) when Redis does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        service_unavailable("Redis", exc)


def require_rabbitmq() -> None:
    """Skip locally (fail in CI) when RabbitMQ does not answer."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        service_unavailable("RabbitMQ", exc)


@dataclass
class WorkerProcess:
    """One ``celery worker`` (its own process group, so the whole group can be killed)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 20) -> None:
        """Until the worker consumes and every pool process built its app."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.output()}")
            text = self.output()
            return " ready." in text and text.count("tasker app built in process") >= 2

        try:
            wait_for(ready, timeout, f"worker {self.name} ready")
        except AssertionError:
            print(self.output())
            raise

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is this worker or one of its pool processes."""
        try:
            return os.getpgid(pid) == self.pid
        except ProcessLookupError:
            return False

    def kill_group(self) -> None:
        """SIGKILL the worker and its pool processes at once."""
        os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def wait_idle(self, quiet: float = 0.5, timeout: float = 5) -> None:
        """Wait until the worker logged nothing for ``quiet`` seconds.

        Celery's prefork pool can hang in a warm shutdown that starts while messages keep arriving.
        """
        deadline = time.monotonic() + timeout
        size, since = -1, time.monotonic()
        while time.monotonic() < deadline and self.proc.poll() is None:
            current = self.log.stat().st_size if self.log.exists() else 0
            if current != size:
                size, since = current, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the group if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@dataclass
class CeleryHarness:
    """Starts workers and producers for one test, on one queue; cleans up after it."""

    database_url: str
    tmp_path: Path
    queue: str = field(default_factory=lambda: f"tasker-test-{uuid.uuid4().hex[:10]}")
    workers: list[WorkerProcess] = field(default_factory=list)
    producers: list[tuple[Tasker, Any]] = field(default_factory=list)
    brokers: set[str] = field(default_factory=set)

    def _require(self, broker_url: str) -> None:
        if broker_url not in self.brokers:
            if broker_url.startswith("amqp"):
                require_rabbitmq()
            elif broker_url == REDIS_URL:
                require_redis(broker_url)
        self.brokers.add(broker_url)

    def start_worker(
        self,
        templates: list[dict[str, Any]],
        *,
        config: dict[str, Any] | None = None,
        dispatch: bool = False,
        broker_url: str = REDIS_URL,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        wait: bool = True,
    ) -> WorkerProcess:
        """A ``celery -A tests.support.celery_app:celery_app worker --pool=prefork -c 2`` on this test's queue."""
        self._require(broker_url)
        name = f"w{len(self.workers)}-{self.queue}"
        log = self.tmp_path / f"{name}.log"
        worker_env = {
            **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            "PYTHONPATH": str(REPO),
            "TASKER_TEST_DATABASE_URL": self.database_url,
            "TASKER_TEST_CONFIG": json.dumps(config if config is not None else WORKER_CONFIG),
            "TASKER_TEST_TEMPLATES": json.dumps(templates),
            "TASKER_TEST_BROKER_URL": broker_url,
            "TASKER_TEST_CELERY_QUEUE": self.queue,
            "TASKER_TEST_DISPATCH": "1" if dispatch else "0",
            **(env or {}),
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "tests.support.celery_app:celery_app", "worker",
                    "--pool=prefork", "-c", "2", "-Q", self.queue, "--without-gossip", "--without-mingle",
                    "--without-heartbeat", "-n", f"{name}@%h", "-l", "INFO", *args,
                ],
                cwd=REPO, env=worker_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        worker = WorkerProcess(name, proc, log)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def producer(
        self,
        templates: list[dict[str, Any]],
        *,
        config: dict[str, Any] | None = None,
        broker_url: str = REDIS_URL,
        dispatch: bool = False,
    ) -> Tasker:
        """An app in this process that sends its tasks to this test's queue."""
        self._require(broker_url)
        celery_app = create_celery_app(lambda: app, broker_url=broker_url, queue=self.queue)
        executor = CeleryExecutor(celery_app, queue=self.queue, dispatch_steps=dispatch)
        app = Tasker(self.database_url, config=config if config is not None else WORKER_CONFIG, executor=executor)
        executor.bind(app)
        for template in templates:
            app.register_task_template(template)
        self.producers.append((app, celery_app))
        return app

    def close(self) -> None:
        for worker in self.workers:
            worker.wait_idle(timeout=2)
        for worker in self.workers:  # warm shutdowns in parallel
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.stop(timeout=5)
        for app, celery_app in self.producers:
            app.shutdown()
            celery_app.close()
        for broker in self.brokers:
            try:
                purge_queue(broker, self.queue)
            except Exception as exc:  # a broker a test stopped on purpose
                print(f"could not purge {self.queue} on {broker}: {exc}")


def purge_queue(broker_url: str, queue: str) -> None:
    """Delete the queue and whatever the broker keeps for it (Redis: unacked entries of killed workers)."""
    if broker_url.startswith("amqp"):
        from kombu import Connection

        with Connection(broker_url, connect_timeout=3) as conn:
            conn.default_channel.queue_delete(queue)
        return
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        for key in list(client.scan_iter(match=f"*{queue}*")):
            client.delete(key)
        for binding in client.scan_iter(match="_kombu.binding.*"):
            for member in client.smembers(binding):
                if queue.encode() in member:
                    client.srem(binding, member)
        for tag, payload in client.hscan_iter("unacked"):
            if queue.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


@pytest.fixture
def celery_harness(pg_schema: str, tmp_path: Path) -> Iterator[CeleryHarness]:
    """Workers and producers on a truncated PostgreSQL database and a fresh queue."""
    truncate_all(pg_schema)
    harness = CeleryHarness(pg_schema, tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def merge_config(extra: dict[str, Any]) -> dict[str, Any]:
    """WORKER_CONFIG deep-merged with ``extra``."""
    from tests.conftest import merge

    return merge(WORKER_CONFIG, extra)
