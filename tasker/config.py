"""Application configuration: typed sections with defaults, validated by pydantic.

``Tasker(config=...)`` accepts a :class:`TaskerConfig` or a plain dict of the same shape; unknown keys are
errors (a typo is never silently ignored). Environment variables fill what the caller leaves unset:
``TASKER_DATABASE_URL`` and ``TASKER_ENV``.
"""

from __future__ import annotations

import math
import os
import random
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """Database options (the URL itself is the ``database_url`` argument or ``TASKER_DATABASE_URL``)."""

    #: SQLite durability: FULL syncs the WAL on every commit (a completed step survives power loss);
    #: NORMAL is faster and survives application crashes but may lose the last commits on power loss.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"


class ExecutionConfig(_Section):
    """How steps run: concurrency of one pass, step claim leases."""

    max_concurrent_steps: int = Field(default=4, ge=1, le=256)
    step_lease_seconds: float = Field(default=300, gt=0)
    worker_poll_interval: float = Field(default=1.0, gt=0)
    #: Seconds a step attempt may run when its template sets no ``timeout_seconds`` (None: no limit).
    step_timeout_seconds: float | None = Field(default=None, gt=0)


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


class TaskerConfig(_Section):
    """All of tasker's configuration."""

    environment: str = Field(default_factory=lambda: os.environ.get("TASKER_ENV", "development"))
    executor: Literal["inline", "worker", "celery"] = "inline"
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    celery: CeleryConfig = Field(default_factory=CeleryConfig)

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
