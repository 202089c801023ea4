"""The one error shape, ``{"error": {"code", "message", "details"}}``, and the handlers that produce it.

:func:`error_for` maps the :class:`~tasker.errors.TaskerError` tree to a status and a code in one table;
request validation errors, unknown routes and :class:`ApiError` (the web layer's own refusals: 401, 403,
a step that is not the task's) take the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from tasker.errors import (
    ConfigurationError,
    StateError,
    StoreError,
    TaskerError,
    TaskNotFoundError,
    TemplateError,
    TemplateNotFoundError,
    ValidationError,
)

logger = logging.getLogger(__name__)


class ErrorInfo(BaseModel):
    """What went wrong: a stable machine code, a human message and optional details (e.g. field paths)."""

    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class ApiError(Exception):
    """A refusal of the HTTP layer itself, with its status, code and optional headers."""

    def __init__(
        self, status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


#: Most specific first: the first matching class decides.
_STATUS: tuple[tuple[type[TaskerError], int, str], ...] = (
    (TemplateNotFoundError, 404, "template_not_found"),
    (TaskNotFoundError, 404, "not_found"),
    (ValidationError, 422, "validation_error"),
    (TemplateError, 422, "template_error"),
    (StateError, 409, "conflict"),
    (StoreError, 503, "store_unavailable"),
    (ConfigurationError, 500, "configuration_error"),
)

#: Documented error responses of every API route (for the OpenAPI spec).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "The request cannot be processed (another tasker error)"),
        (401, "Missing or invalid credentials"),
        (403, "The credentials lack the needed scope"),
        (404, "Unknown task, step or template"),
        (409, "The task or step is in a state that forbids the action"),
        (422, "Invalid request"),
        (503, "The database is unavailable"),
    )
}


def error_for(exc: TaskerError) -> ApiError:
    """The HTTP status and code of a tasker error."""
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            details: Any = None
            if isinstance(exc, ValidationError):
                details = {"field": exc.field, "errors": exc.errors}
            if isinstance(exc, StoreError):  # the driver's message may quote connection details
                return ApiError(status, code, "the database is unavailable")
            return ApiError(status, code, str(exc), details=details)
    return ApiError(400, "bad_request", str(exc))


def error_response(error: ApiError) -> JSONResponse:
    """The JSON response of an :class:`ApiError`."""
    body = ErrorResponse(error=ErrorInfo(code=error.code, message=error.message, details=error.details))
    return JSONResponse(body.model_dump(mode="json"), status_code=error.status, headers=error.headers)


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "context", "order_id")`` -> ``context.order_id``; query and path parameters keep their name."""
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def allowed_methods(request: Request) -> set[str]:
    """The methods of every route matching the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return methods


def install_error_handlers(api: FastAPI) -> None:
    """Make every error leave the app in the one shape."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def tasker_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TaskerError)
        error = error_for(exc)
        if error.status >= 500:
            logger.error("request failed: %s", exc, exc_info=exc)
        return error_response(error)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [{"field": _field_path(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        return error_response(
            ApiError(422, "validation_error", f"{first['field']}: {first['message']}", details=details)
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:  # Starlette names only the first route of the path; list every route's methods
            headers = {"Allow": ", ".join(sorted(allowed_methods(request)))}
        if exc.status_code == 400:  # a body FastAPI cannot even decode: invalid like any other bad body
            return error_response(ApiError(422, "validation_error", f"body: {exc.detail}"))
        return error_response(ApiError(exc.status_code, code, str(exc.detail), headers=headers))

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(TaskerError, tasker_error)
    api.add_exception_handler(RequestValidationError, invalid_request)
    api.add_exception_handler(HTTPException, http_error)
