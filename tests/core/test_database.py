"""Database set-up per backend, URL resolution, configuration validation and the backoff formula (§5.10)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from tasker import Tasker
from tasker.config import BackoffConfig, TaskerConfig
from tasker.errors import ConfigurationError, StoreError
from tasker.models import WorkflowStep
from tests.conftest import PG_URL, service_unavailable


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Tasker]:
    with Tasker(f"sqlite:///{tmp_path}/pragmas.db") as app:
        app.migrate()
        yield app


# -- SQLite ------------------------------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(sqlite_app: Tasker) -> None:
    with sqlite_app.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_pragmas_hold_on_every_pooled_connection(sqlite_app: Tasker) -> None:
    engine = sqlite_app.db.engine.execution_options(tasker_readonly=True)  # plain BEGIN: readers do not queue
    connections = [engine.connect() for _ in range(3)]  # three distinct pool connections at once
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        for conn in connections:
            conn.close()


def test_sqlite_file_is_left_in_wal_mode(sqlite_app: Tasker, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "pragmas.db")
    try:  # journal_mode=WAL is persistent: a plain sqlite3 connection sees it too
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_foreign_keys_are_enforced(app: Tasker) -> None:
    """Both backends refuse a step of a task that does not exist."""
    with pytest.raises(StoreError), app.db.transaction() as session:
        session.execute(
            insert(WorkflowStep).values(task_id=424242, named_step_id=424242, name="orphan", inputs={}, results={})
        )


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/deeper/tasker.db"
    with Tasker(url) as app:
        app.migrate()
    assert (tmp_path / "nested" / "deeper" / "tasker.db").exists()


# -- URL resolution ----------------------------------------------------------------------------------------


def test_environment_url_is_used_when_none_is_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKER_DATABASE_URL", f"sqlite:///{tmp_path}/from_env.db")
    monkeypatch.chdir(tmp_path)
    with Tasker() as app:
        assert app.db.url == f"sqlite:///{tmp_path}/from_env.db"
        app.migrate()
    assert (tmp_path / "from_env.db").exists()
    assert not (tmp_path / "tasker.db").exists()


def test_explicit_url_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKER_DATABASE_URL", f"sqlite:///{tmp_path}/from_env.db")
    with Tasker(f"sqlite:///{tmp_path}/explicit.db") as app:
        assert app.db.url == f"sqlite:///{tmp_path}/explicit.db"


def test_default_url_is_a_local_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with Tasker() as app:
        assert app.db.url == "sqlite:///tasker.db"
        assert app.db.dialect == "sqlite"


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_postgres_url_is_normalised_to_psycopg(scheme: str) -> None:
    with Tasker(f"{scheme}postgres@127.0.0.1:5432/test") as app:  # no connection is made here
        assert app.db.url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        assert app.db.dialect == "postgresql"
        assert app.db.engine.dialect.driver == "psycopg"


def test_explicit_driver_is_kept() -> None:
    with Tasker("postgresql+psycopg://postgres@127.0.0.1:5432/test") as app:
        assert app.db.url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
def test_bare_postgresql_url_connects() -> None:
    bare = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    app = Tasker(bare)
    try:
        with app.db.read() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    except StoreError as exc:
        service_unavailable("PostgreSQL", exc)
    finally:
        app.shutdown()


@pytest.mark.parametrize(
    "url",
    ["not a url", "nonsense://", "sqlite+nodriver:///x.db", "postgresql+nodriver://h/db", "mysql://h/db"],
    ids=["unparsable", "unknown-dialect", "unknown-sqlite-driver", "unknown-pg-driver", "unsupported"],
)
def test_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Tasker(url)


def test_unsupported_backend_is_named_not_blamed_on_a_missing_driver() -> None:
    """tasker supports SQLite and PostgreSQL: a MySQL URL must not suggest installing the postgres extra."""
    with pytest.raises(ConfigurationError) as info:
        Tasker("mysql://h/db")
    message = str(info.value)
    assert "mysql" in message
    assert "tasker-engine[postgres]" not in message


# -- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"backof": {}}, "backof"),
        ({"backoff": {"max_backof_seconds": 1}}, "max_backof_seconds"),
        ({"engine": {"identity": "hash"}}, "identity"),
        ({"execution": {"max_concurrent_steps": 2, "typo": True}}, "typo"),
    ],
    ids=["section", "backoff-key", "engine-key", "execution-key"],
)
def test_unknown_config_key_is_named(config: dict, where: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=where):
        Tasker(f"sqlite:///{tmp_path}/c.db", config=config)


@pytest.mark.parametrize(
    "config",
    [
        {"backoff": {"max_backoff_seconds": "soon"}},
        {"backoff": {"default_backoff_seconds": "1,2,3"}},
        {"backoff": {"jitter_max_percentage": 2}},
        {"execution": {"max_concurrent_steps": 0}},
        {"executor": "threads"},
    ],
)
def test_invalid_config_value_is_a_configuration_error(config: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Tasker(f"sqlite:///{tmp_path}/c.db", config=config)


def test_config_accepts_a_dict_or_a_config_object(tmp_path: Path) -> None:
    config = TaskerConfig.coerce({"backoff": {"max_backoff_seconds": 7}})
    with Tasker(f"sqlite:///{tmp_path}/a.db", config=config) as one:
        assert one.config.backoff.max_backoff_seconds == 7
    with Tasker(f"sqlite:///{tmp_path}/b.db", config={"backoff": {"max_backoff_seconds": 7}}) as two:
        assert two.config == config
        assert two.config.backoff.default_backoff_seconds == [1, 2, 4, 8, 16, 32]  # defaults kept


# -- backoff formula (reference §5.10) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(0, 0), (1, 1), (2, 2), (3, 4), (6, 32), (7, 49), (8, 64), (100, 300)]
)
def test_default_backoff_without_jitter(attempt: int, seconds: int) -> None:
    assert BackoffConfig(jitter_enabled=False).calculate_backoff_seconds(attempt) == seconds


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 5), (2, 10), (3, 5), (4, 8), (100, 60)])
def test_custom_backoff_without_jitter(attempt: int, seconds: int) -> None:
    config = BackoffConfig(
        default_backoff_seconds=[5, 10], max_backoff_seconds=60, backoff_multiplier=1.5, jitter_enabled=False
    )
    assert config.calculate_backoff_seconds(attempt) == seconds


def test_backoff_defaults() -> None:
    config = BackoffConfig()
    assert config.default_backoff_seconds == [1, 2, 4, 8, 16, 32]
    assert (config.max_backoff_seconds, config.backoff_multiplier) == (300, 2.0)
    assert (config.jitter_enabled, config.jitter_max_percentage) == (True, 0.1)
    assert config.reenqueue_delays == {"has_ready_steps": 0, "waiting_for_dependencies": 45, "processing": 10}
    assert (config.default_reenqueue_delay, config.buffer_seconds) == (30, 5)


@pytest.mark.parametrize("attempt", range(1, 13))
def test_jitter_stays_within_ten_percent(attempt: int) -> None:
    plain = BackoffConfig(jitter_enabled=False).calculate_backoff_seconds(attempt)
    spread = int(plain * 0.1 + 0.5)  # 10 %, rounded half away from zero
    jittered = BackoffConfig()
    rng = random.Random(attempt)
    values = {jittered.calculate_backoff_seconds(attempt, rng) for _ in range(400)}
    assert min(values) >= max(plain - spread, 1)
    assert max(values) <= plain + spread
    if spread:
        assert len(values) > 1  # jitter actually varies the delay
    if plain >= 100:
        assert all(abs(v - plain) <= plain * 0.1 for v in values)


def test_jitter_rounds_half_away_from_zero() -> None:
    """5 s x 10 % = 0.5 -> a spread of 1 s (Python's round(0.5) would give 0)."""
    config = BackoffConfig(default_backoff_seconds=[5], max_backoff_seconds=60)
    values = {config.calculate_backoff_seconds(1, random.Random(seed)) for seed in range(200)}
    assert values == {4, 5, 6}


def test_jitter_never_goes_below_one_second() -> None:
    config = BackoffConfig(default_backoff_seconds=[1], jitter_max_percentage=1.0)
    values = {config.calculate_backoff_seconds(1, random.Random(seed)) for seed in range(200)}
    assert min(values) >= 1


def test_zero_max_backoff_makes_retries_immediate() -> None:
    config = BackoffConfig(max_backoff_seconds=0)
    assert all(config.calculate_backoff_seconds(n) == 0 for n in range(1, 20))
    assert config.cap(3600) == 0


def test_explicit_backoff_is_capped() -> None:
    config = BackoffConfig(max_backoff_seconds=60)
    assert config.cap(3600) == 60
    assert config.cap(12) == 12
    assert config.cap(-5) == 0
