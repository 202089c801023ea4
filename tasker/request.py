"""TaskRequest: what a caller asks for when creating a task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TaskRequest(BaseModel):
    """A request to run the template ``namespace.name@version`` with ``context``.

    ``trace_context`` is an optional W3C carrier (``traceparent``/``tracestate``), e.g. the headers
    of the HTTP request that asked for the task; without it the caller's current span is used.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    namespace: str = "default"
    version: str = "0.1.0"
    context: dict[str, Any] = Field(default_factory=dict)
    initiator: str = "unknown"
    source_system: str = "unknown"
    reason: str = "unknown"
    tags: list[str] = Field(default_factory=list)
    bypass_steps: list[str] = Field(default_factory=list)
    requested_at: datetime | None = None
    trace_context: dict[str, Any] | None = None
