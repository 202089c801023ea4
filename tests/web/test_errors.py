"""The TaskerError tree mapped to statuses and codes in one table."""

from __future__ import annotations

import pytest

from tasker.errors import (
    ConfigurationError,
    EventError,
    GuardFailedError,
    InvalidStateTransition,
    StoreError,
    TaskerError,
    TaskNotFoundError,
    TaskNotRetryableError,
    TemplateError,
    TemplateNotFoundError,
    ValidationError,
)
from tasker.web.errors import error_for


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (TaskNotFoundError(1), 404, "not_found"),
        (TemplateNotFoundError("a", "b", "1.0.0"), 404, "template_not_found"),
        (ValidationError("bad", field="x"), 422, "validation_error"),
        (TemplateError("bad"), 422, "template_error"),
        (InvalidStateTransition("task", 1, "complete", "pending"), 409, "conflict"),
        (TaskNotRetryableError(1, "complete"), 409, "conflict"),
        (GuardFailedError("task", 1, "complete", "steps left"), 409, "conflict"),
        (StoreError("database error: connection to postgresql://u:pw@db failed"), 503, "store_unavailable"),
        (ConfigurationError("broken"), 500, "configuration_error"),
        (EventError("odd"), 400, "bad_request"),
    ],
)
def test_status_and_code(exc: TaskerError, status: int, code: str) -> None:
    error = error_for(exc)
    assert (error.status, error.code) == (status, code)
    assert "pw@" not in error.message  # a driver's message never leaves: it may name the connection


def test_validation_details_name_the_field() -> None:
    error = error_for(ValidationError("bad", field="order_id", errors=["context.order_id: bad"]))
    assert error.details == {"field": "order_id", "errors": ["context.order_id: bad"]}
