"""TaskRequest: what a caller asks for when creating a task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from tasker.errors import ValidationError


class TaskRequest(BaseModel):
    """A request to run the template ``namespace.name@version`` with ``context``.

    ``trace_context`` is an optional W3C carrier (``traceparent``/``tracestate``), e.g. the headers
    of the HTTP request that asked for the task; without it the caller's current span is used.
    A bad field raises :class:`tasker.errors.ValidationError` naming it; string lengths are those of the
    columns that store them, so a request that builds is never refused by the database.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    namespace: str = Field(default="default", min_length=1, max_length=64)
    version: str = Field(default="0.1.0", min_length=1, max_length=16)
    context: dict[str, Any] = Field(default_factory=dict)
    initiator: str = Field(default="unknown", max_length=128)
    source_system: str = Field(default="unknown", max_length=128)
    reason: str = Field(default="unknown", max_length=128)
    tags: list[str] = Field(default_factory=list)
    bypass_steps: list[str] = Field(default_factory=list)
    requested_at: datetime | None = None
    trace_context: dict[str, Any] | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            messages = [
                f"{'.'.join(str(p) for p in error['loc']) or 'request'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            ]
            first = exc.errors()[0]["loc"]
            field = ".".join(str(p) for p in first) or None
            raise ValidationError(
                "invalid task request: " + "; ".join(messages), field=field, errors=messages
            ) from None
