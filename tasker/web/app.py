"""``create_app``: the FastAPI application over one Tasker app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from tasker import __version__
from tasker.app import Tasker
from tasker.web.auth import Auth, TokenAuth, auth_from_config
from tasker.web.deps import WebContext
from tasker.web.errors import install_error_handlers
from tasker.web.metrics import MetricsEndpoint
from tasker.web.pages import install_pages
from tasker.web.presenter import Presenter
from tasker.web.routes import catalog, health, tasks

#: Seconds ``/health/ready`` waits for its checks before answering 503.
READY_TIMEOUT = 2.0


def create_app(app: Tasker, *, auth: Auth | None = None, ready_timeout: float = READY_TIMEOUT) -> FastAPI:
    """The REST API over ``app``; ``auth`` defaults to the one configured in ``app.config.web`` (None: open).

    The caller owns ``app`` (``tasker serve`` shuts it down when the server stops).
    """
    web = app.config.web
    if auth is None:
        auth = auth_from_config(web)
    context = WebContext(
        tasker=app,
        auth=auth,
        presenter=Presenter(app.events.masker, trace_url_template=web.trace_url_template),
        ready_timeout=ready_timeout,
    )
    api = FastAPI(
        title="tasker",
        version=__version__,
        description="Tasks, steps, templates, events, statistics and health of a tasker workflow engine.",
    )
    api.state.tasker_web = context
    install_error_handlers(api)
    for module in (tasks, catalog, health):
        api.include_router(module.router)
    if isinstance(auth, TokenAuth):
        _declare_bearer(api)
    metrics = MetricsEndpoint(context, require_auth=auth is not None and web.metrics_require_auth)
    api.router.routes.append(Route("/metrics", metrics, methods=["GET", "HEAD"], include_in_schema=False))
    install_pages(api)
    return api


def _declare_bearer(api: FastAPI) -> None:
    """Add the bearer scheme to the spec, required by every operation that can answer 401 (``/docs`` can log in)."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["bearer"] = {"type": "http", "scheme": "bearer", "description": "A token of web.tokens"}
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if "401" in operation.get("responses", {}):
                        operation["security"] = [{"bearer": []}]
        return api.openapi_schema or generate()

    api.openapi = openapi  # type: ignore[method-assign]
