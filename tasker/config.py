"""Application configuration: typed sections with defaults, validated by pydantic.

``Tasker(config=...)`` accepts a :class:`TaskerConfig` or a plain dict of the same shape; unknown keys are
errors (a typo is never silently ignored). Environment variables fill what the caller leaves unset:
``TASKER_DATABASE_URL`` and ``TASKER_ENV``.

:func:`load_config` is what every entry point (the CLI, ``Tasker.from_config``, the Celery app) uses: a YAML
file of the same shape (``--config PATH`` or ``$TASKER_CONFIG``), then ``TASKER_SECTION__KEY`` environment
overrides (read by pydantic-settings), then command-line flags, each value remembering where it came from.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource

from tasker.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///tasker.db"

#: Histogram buckets sized for jobs: 5 ms ... 10 min (seconds).
JOB_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

DEFAULT_FILTER_PARAMETERS: tuple[str, ...] = (
    "password", "passw", "secret", "token", "api_key", "apikey", "_key", "authorization", "auth_token",
    "credit_card", "card_number", "cvv", "ssn", "private_key", "crypt", "salt", "certificate", "otp",
)  # fmt: skip


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackoffConfig(_Section):
    """Retry backoff (reference §5.10) and re-enqueue delays (§5.6)."""

    default_backoff_seconds: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    max_backoff_seconds: float = Field(default=300, ge=0)
    backoff_multiplier: float = Field(default=2.0, gt=0)
    jitter_enabled: bool = True
    jitter_max_percentage: float = Field(default=0.1, ge=0, le=1)
    reenqueue_delays: dict[str, float] = Field(
        default_factory=lambda: {"has_ready_steps": 0.0, "waiting_for_dependencies": 45.0, "processing": 10.0}
    )
    default_reenqueue_delay: float = Field(default=30, ge=0)
    buffer_seconds: float = Field(default=5, ge=0)

    def calculate_backoff_seconds(self, attempt: int, rng: random.Random | None = None) -> float:
        """Backoff before retry number ``attempt`` (1-based), capped and jittered."""
        if attempt <= 0:
            return 0
        table = self.default_backoff_seconds
        base = table[attempt - 1] if attempt <= len(table) else int(attempt**self.backoff_multiplier)
        seconds = min(float(base), self.max_backoff_seconds)
        if self.jitter_enabled and seconds > 0:
            spread = math.floor(seconds * self.jitter_max_percentage + 0.5)  # round half away from zero
            seconds = max(seconds + (rng or random).randint(-spread, spread), 1.0)
            seconds = min(seconds, self.max_backoff_seconds)
        return seconds

    def cap(self, seconds: float) -> float:
        """Clamp an explicitly requested backoff to ``max_backoff_seconds``."""
        return max(0.0, min(float(seconds), self.max_backoff_seconds))


class DatabaseConfig(_Section):
    """Database options."""

    #: SQLAlchemy URL; unset: the ``database_url`` argument, else ``$TASKER_DATABASE_URL``, else ``sqlite:///tasker.db``.
    url: str | None = None

    #: SQLite durability: FULL syncs the WAL on every commit (a completed step survives power loss);
    #: NORMAL is faster and survives application crashes but may lose the last commits on power loss.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"


class ExecutionConfig(_Section):
    """How steps run: concurrency of one pass, step claim leases."""

    max_concurrent_steps: int = Field(default=12, ge=1, le=256)
    #: After a step finishes, how long a pass waits for the other running steps to finish too, so that one
    #: transaction records them all (group commit); 0 records every outcome as soon as it comes.
    group_commit_seconds: float = Field(default=0.002, ge=0, le=1)
    step_lease_seconds: float = Field(default=300, gt=0)
    worker_poll_interval: float = Field(default=1.0, gt=0)
    #: Seconds a step attempt may run when its template sets no ``timeout_seconds`` (None: no limit).
    step_timeout_seconds: float | None = Field(default=None, gt=0)


class WorkerConfig(_Section):
    """``tasker worker`` processes."""

    #: Task passes one worker process runs at once.
    concurrency: int = Field(default=1, ge=1, le=256)


class TemplatesConfig(_Section):
    """Where task templates and their handler classes come from (for every command and the Celery app)."""

    #: Template YAML files or directories, registered by :meth:`Tasker.from_config`.
    paths: list[str] = Field(default_factory=list)
    #: Directories put at the front of ``sys.path`` before templates load, so their ``handler_class`` imports.
    import_paths: list[str] = Field(default_factory=list)
    #: Ruby handler names (``Mod::Klass``): Ruby module prefix (or whole constant) -> Python module (or
    #: ``pkg.mod:Class``); see docs/ruby-migration.md.
    handler_aliases: dict[str, str] = Field(default_factory=dict)


class EngineConfig(_Section):
    """Task identity and environment selection."""

    identity_strategy: Literal["default", "hash", "custom"] = "default"
    identity_strategy_class: str | None = None
    #: Largest task context accepted, in bytes of JSON (1 MiB).
    max_context_bytes: int = Field(default=1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _custom_needs_class(self) -> EngineConfig:
        if self.identity_strategy == "custom" and not self.identity_strategy_class:
            raise ValueError("identity_strategy 'custom' needs identity_strategy_class")
        return self


class EventsConfig(_Section):
    """Event bus options: the sensitive-key filter applied to every payload that leaves the engine."""

    filter_parameters: list[str] = Field(default_factory=lambda: list(DEFAULT_FILTER_PARAMETERS))
    filter_mask: str = "[FILTERED]"
    #: Extra regular expressions scrubbed from free text (a named group ``value`` masks only that part).
    filter_patterns: list[str] = Field(default_factory=list)
    #: Subscriptions YAML files loaded by :meth:`Tasker.from_config`.
    subscriptions: list[str] = Field(default_factory=list)
    #: A synchronous subscriber taking longer than this is logged and counted (make it ``delivery = "background"``).
    slow_subscriber_seconds: float = Field(default=1.0, gt=0)


class TailSamplingConfig(_Section):
    """In-process tail sampler: keep error and slow task traces and a fraction of the rest."""

    enabled: bool = False
    slow_threshold_seconds: float = Field(default=5.0, ge=0)
    keep_ratio: float = Field(default=0.1, ge=0, le=1)
    max_traces: int = Field(default=1000, ge=1)
    max_spans_per_trace: int = Field(default=1000, ge=1)
    #: How long finished OK step segments wait for their task's decision before being decided alone.
    decision_wait_seconds: float = Field(default=30.0, gt=0)


def _otel_env(*names: str) -> str | None:
    """The first of the ``OTEL_*`` variables that is set (non-empty)."""
    return next((value.strip() for name in names if (value := os.environ.get(name, "")).strip()), None)


def _env_service_name() -> str:
    """``OTEL_SERVICE_NAME``, else ``service.name`` of ``OTEL_RESOURCE_ATTRIBUTES``, else ``tasker``."""
    name = _otel_env("OTEL_SERVICE_NAME")
    if name is None:
        pairs = (item.partition("=") for item in (_otel_env("OTEL_RESOURCE_ATTRIBUTES") or "").split(","))
        name = next((value.strip() for key, _, value in pairs if key.strip() == "service.name"), None)
    return name or "tasker"


def _env_sampling_ratio() -> float:
    """The ratio ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` describe (1.0 when unset)."""
    sampler = (_otel_env("OTEL_TRACES_SAMPLER") or "parentbased_always_on").lower()
    if sampler.endswith("always_off"):
        return 0.0
    if sampler.endswith("traceidratio"):
        try:
            return min(max(float(_otel_env("OTEL_TRACES_SAMPLER_ARG") or 1.0), 0.0), 1.0)
        except ValueError:
            return 1.0
    return 1.0


def _env_otlp_protocol() -> str:
    return _otel_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"


class TelemetryConfig(_Section):
    """OpenTelemetry tracing of tasks and steps; unset values come from the standard ``OTEL_*`` variables."""

    enabled: bool = True
    service_name: str = Field(default_factory=_env_service_name)
    #: ``service.version`` of the resource: your service's version (unset: OTEL_RESOURCE_ATTRIBUTES decides).
    service_version: str | None = None
    exporter: Literal["console", "otlp", "none"] = "none"
    #: None: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, headers, timeout, ... itself.
    otlp_endpoint: str | None = None
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(default_factory=_env_otlp_protocol, validate_default=True)
    sampling_ratio: float = Field(default_factory=_env_sampling_ratio, ge=0, le=1)
    propagation: Literal["parent", "link"] = "parent"
    #: Seconds one span export may take, retries included: bounds ``app.shutdown()`` with a dead collector.
    export_timeout_seconds: float = Field(default=5.0, gt=0)
    tail_sampling: TailSamplingConfig = Field(default_factory=TailSamplingConfig)


class LoggingConfig(_Section):
    """Log records of the engine: ``format: json`` writes one JSON object per line (see docs/telemetry.md)."""

    format: Literal["text", "json"] = "text"


class MetricsConfig(_Section):
    """Native Prometheus metrics."""

    enabled: bool = True
    buckets: list[float] = Field(default_factory=lambda: list(JOB_BUCKETS))
    #: This worker's name on OTel metrics (``messaging.destination.partition.id``): bounded, stable; unset: none.
    worker_name: str | None = None


class CeleryConfig(_Section):
    """Celery executor settings."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "tasker"
    dispatch_steps: bool = False
    #: How often one process per Celery worker re-sends overdue tasks whose message may be lost (0: never).
    sweep_interval_seconds: float = Field(default=30.0, ge=0)
    #: How long past its due time a task waits for its message before the sweep re-sends it.
    sweep_grace_seconds: float = Field(default=120.0, gt=0)
    #: Retries of a message whose pass or step failed on the database, with exponential backoff.
    store_retry_limit: int = Field(default=10, ge=0)
    store_retry_backoff_max_seconds: float = Field(default=60.0, gt=0)


class WebTokenConfig(_Section):
    """One API bearer token: its hex SHA-256 digest or the environment variable holding it, and its scopes."""

    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    token_env: str | None = None
    scopes: tuple[Literal["read", "write"], ...] = ("read",)

    @model_validator(mode="after")
    def _one_source(self) -> WebTokenConfig:
        if (self.token_sha256 is None) == (self.token_env is None):
            raise ValueError("a token needs exactly one of token_sha256 and token_env")
        return self


class WebConfig(_Section):
    """The HTTP API (``tasker serve``): authentication and links for the dashboard."""

    tokens: list[WebTokenConfig] = Field(default_factory=list)
    #: Import path (``module:Class``) of a custom authenticator; replaces the bearer tokens.
    authenticator: str | None = None
    #: Whether ``/metrics`` needs the ``read`` scope when authentication is configured.
    metrics_require_auth: bool = True
    #: Link to a trace in a tracing UI, e.g. ``https://jaeger.example/trace/{trace_id}``.
    trace_url_template: str | None = None

    @field_validator("trace_url_template")
    @classmethod
    def _formats_with_trace_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(trace_id="0" * 32)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"must be a format string using only {{trace_id}}: {exc!r}") from exc
        return value


class TaskerConfig(_Section):
    """All of tasker's configuration."""

    environment: str = Field(default_factory=lambda: os.environ.get("TASKER_ENV", "development"))
    executor: Literal["inline", "worker", "celery"] = "inline"
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    celery: CeleryConfig = Field(default_factory=CeleryConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    @classmethod
    def coerce(cls, value: TaskerConfig | dict[str, Any] | None) -> TaskerConfig:
        """Build a config from a dict (or pass one through); invalid values raise ConfigurationError."""
        if isinstance(value, TaskerConfig):
            return value
        try:
            return cls.model_validate(value or {})
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigurationError(f"invalid config at '{where}': {first['msg']}") from exc


def resolve_database_url(url: str | None) -> str:
    """The explicit URL, else ``TASKER_DATABASE_URL``, else the embedded SQLite default."""
    return url or os.environ.get("TASKER_DATABASE_URL") or DEFAULT_DATABASE_URL


#: Environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV = "TASKER_CONFIG"
ENV_PREFIX = "TASKER_"
ENV_DELIMITER = "__"
#: Older single-variable spellings, read with the lowest environment precedence.
_ENV_ALIASES = {"TASKER_DATABASE_URL": ("database", "url")}
DEFAULT_SOURCE = "default"

Key = tuple[str, ...]


class ConfigFileError(ConfigurationError):
    """The configuration is invalid; the one-line message names the source and the key."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration with the source of every value set explicitly (file, env var or flag)."""

    config: TaskerConfig
    path: Path | None = None
    #: Dotted key prefix -> source (``tasker.yaml``, ``env TASKER_X__Y``, ``flag --x``); unlisted: default.
    sources: Mapping[Key, str] = field(default_factory=dict)

    def source_of(self, key: Key) -> str:
        """Where the value at ``key`` (or the section containing it) was set, else ``default``."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.sources:
                return self.sources[key[:end]]
        deeper = [source for set_key, source in self.sources.items() if set_key[: len(key)] == key]
        return deeper[-1] if deeper else DEFAULT_SOURCE  # a dict-valued key set entry by entry

    def items(self) -> list[tuple[str, Any, str]]:
        """Every setting (the fields of each section) as (dotted key, JSON value, source), in declaration order."""
        out: list[tuple[str, Any, str]] = []

        def walk(prefix: Key, section: BaseModel) -> None:
            data = section.model_dump(mode="json")
            for name in type(section).model_fields:
                key, value = (*prefix, name), getattr(section, name)
                if isinstance(value, BaseModel):
                    walk(key, value)
                else:
                    out.append((".".join(key), data[name], self.source_of(key)))

        walk((), self.config)
        return out


def _environment_source() -> EnvSettingsSource:
    """pydantic-settings' reader of ``TASKER_SECTION__KEY`` variables for the fields of TaskerConfig."""
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in TaskerConfig.model_fields.items()}
    shape = cast(type[BaseSettings], create_model("TaskerEnvironment", __base__=BaseSettings, **fields))
    return EnvSettingsSource(shape, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, case_sensitive=False)


def _leaves(data: Mapping[str, Any], prefix: Key = ()) -> list[Key]:
    """The dotted keys of the values in a nested mapping."""
    keys: list[Key] = []
    for name, value in data.items():
        key = (*prefix, str(name))
        keys.extend(_leaves(value, key) if isinstance(value, Mapping) and value else [key])
    return keys


def _merge(into: dict[str, Any], key: Key, value: Any) -> None:
    for part in key[:-1]:
        node = into.get(part)
        if not isinstance(node, dict):
            node = into[part] = {}
        into = node
    into[key[-1]] = value


def _get(data: Mapping[str, Any], key: Key) -> Any:
    for part in key:
        data = data[part]
    return data


def _read_file(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigFileError(source, None, exc.strerror or str(exc)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigFileError(source, None, f"{where}invalid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(source, None, f"must be a mapping of sections, not {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Build the configuration: defaults < file < environment < ``overrides``.

    ``path`` defaults to ``$TASKER_CONFIG`` (no file when neither is set). ``overrides`` maps dotted keys to
    (value, source label) - the CLI's flags (None values are skipped). Relative paths under ``templates`` and
    ``events.subscriptions`` in the file are resolved against the file's directory. Raises ConfigFileError
    naming the source and key of the first problem (unknown key, bad value, unreadable file).
    """
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    file_path = Path(path) if path is not None else None
    merged: dict[str, Any] = {}
    sources: dict[Key, str] = {}
    if file_path is not None:
        data = _read_file(file_path)
        for key in _leaves(data):
            value = _get(data, key)
            if key[:1] in (("templates",), ("events",)) and key[-1] in ("paths", "import_paths", "subscriptions"):
                value = _relative_to(file_path.parent, value)
            _merge(merged, key, value)
            sources[key] = str(file_path)
    for name, key in _ENV_ALIASES.items():
        if env.get(name):
            _merge(merged, key, env[name])
            sources[key] = f"env {name}"
    env_source = _environment_source()
    if environ is not None:  # read the given mapping instead of the process environment
        env_source.env_vars = {k.lower(): v for k, v in environ.items()}
    env_data = env_source()
    for key in _leaves(env_data):
        _merge(merged, key, _get(env_data, key))
        sources[key] = "env " + ENV_PREFIX + ENV_DELIMITER.join(key).upper()
    for dotted, (value, label) in (overrides or {}).items():
        if value is not None:
            key = tuple(dotted.split("."))
            _merge(merged, key, value)
            sources[key] = label
    try:
        config = TaskerConfig.model_validate(merged)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        key = tuple(str(p) for p in first["loc"])
        loaded = LoadedConfig(TaskerConfig(), file_path, sources)
        message = "unknown key" if first["type"] == "extra_forbidden" else _message(first["msg"])
        raise ConfigFileError(loaded.source_of(key), ".".join(key), message) from exc
    return LoadedConfig(config, file_path, sources)


def _relative_to(base: Path, value: Any) -> Any:
    if isinstance(value, list):
        return [str(base / v) if isinstance(v, str) else v for v in value]
    return value


def _message(msg: str) -> str:
    """pydantic's ``Input should be greater than 0`` as ``must be greater than 0``."""
    for prefix, replacement in (("Input should be ", "must be "), ("Value error, ", "")):
        if msg.startswith(prefix):
            return replacement + msg[len(prefix) :]
    return msg
