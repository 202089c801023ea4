"""``/metrics``: the app's Prometheus registry through prometheus_client's ASGI app, behind the API's auth."""

from __future__ import annotations

from prometheus_client import make_asgi_app
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tasker.web.deps import WebContext, check_access
from tasker.web.errors import ApiError, error_response


class MetricsEndpoint:
    """An ASGI endpoint: content negotiation and gzip by prometheus_client; ``read`` on ``metrics`` when required."""

    def __init__(self, context: WebContext, *, require_auth: bool) -> None:
        self._context = context
        self._require_auth = require_auth
        self._exposition = make_asgi_app(registry=context.tasker.metrics.exposition_registry())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._require_auth:
            try:
                check_access(self._context, Request(scope), "metrics", "read")
            except ApiError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self._exposition(scope, receive, send)
