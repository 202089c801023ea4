"""The ``/metrics`` HTTP endpoint: prometheus_client's ASGI app behind uvicorn, with optional authentication.

:func:`make_metrics_app` is an ASGI app: ``GET``/``HEAD /metrics`` is answered by prometheus_client's own ASGI
exposition (content negotiation between Prometheus text and OpenMetrics, gzip when accepted, ``name[]``
filtering) over the backend's exposition registry, read per request (so multiprocess mode merges the files
of every process at each scrape). Responses are never cached. Metrics disabled or a failed render answer 503
with a JSON body (reference §8.10); other paths 404, other methods 405; with :class:`MetricsAuth` a request
without the bearer token or basic credentials gets 401.

:class:`MetricsServer` serves an ASGI app with uvicorn from a background thread (or the calling one): an
event loop instead of a thread per connection, a listen backlog of :data:`BACKLOG`, and connections idle for
:data:`IDLE_TIMEOUT_SECONDS` closed (also those that never send a request). tasker's HTTP API can mount the same app.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import make_asgi_app

from tasker.errors import ConfigurationError, MetricsError
from tasker.metrics.backend import MetricsBackend
from tasker.metrics.export import export_timestamp

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_PATH = "/metrics"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
#: Connections the kernel queues before the server accepts them (Prometheus fleets scrape in bursts).
BACKLOG = 2048
#: Seconds an idle keep-alive connection stays open.
IDLE_TIMEOUT_SECONDS = 5

#: Sent with every response: scrapes must never be served from a cache.
NO_CACHE_HEADERS = (
    (b"cache-control", b"no-cache, no-store, must-revalidate"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
)


@dataclass(frozen=True)
class MetricsAuth:
    """Credentials ``/metrics`` requires: a bearer token, HTTP basic ``username``/``password``, or either."""

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ConfigurationError("metrics basic auth needs both a username and a password")
        if self.bearer_token is None and self.username is None:
            raise ConfigurationError("metrics auth needs a bearer token or a username and password")

    def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value carries these credentials (constant-time compare)."""
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.bearer_token is not None:
            return hmac.compare_digest(value.encode(), self.bearer_token.encode())
        if scheme == "basic" and self.username is not None and self.password is not None:
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(given, f"{self.username}:{self.password}".encode())
        return False

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a 401."""
        return 'Basic realm="tasker metrics"' if self.username is not None else 'Bearer realm="tasker metrics"'


async def _respond(send: Send, status: int, body: bytes, content_type: str, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *NO_CACHE_HEADERS, *extra]})
    await send({"type": "http.response.body", "body": body})


async def _unavailable(send: Send, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message, "timestamp": export_timestamp()}).encode()
    await _respond(send, 503, body, "application/json")


def make_metrics_app(backend_factory: Callable[[], MetricsBackend], auth: MetricsAuth | None = None) -> ASGIApp:
    """An ASGI app serving ``/metrics`` from the backend ``backend_factory()`` returns on each request."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("path") != METRICS_PATH:
            await _respond(send, 404, b"Not Found\n", "text/plain; charset=utf-8")
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", "text/plain; charset=utf-8", (b"allow", b"GET, HEAD"))
            return
        if auth is not None:
            headers = dict(scope.get("headers") or [])
            if not auth.allows(headers.get(b"authorization", b"").decode("latin-1")):
                challenge = (b"www-authenticate", auth.challenge.encode())
                await _respond(send, 401, b"Unauthorized\n", "text/plain; charset=utf-8", challenge)
                return
        try:
            backend = backend_factory()
        except Exception as exc:
            logger.exception("metrics endpoint failed")
            await _unavailable(send, "Metrics endpoint failed", str(exc))
            return
        if not backend.enabled:
            await _unavailable(send, "Metrics export failed", "Metrics collection is disabled")
            return
        try:
            registry = backend.exposition_registry()
            exposition = make_asgi_app(registry)
            messages: list[Message] = []

            async def collect(message: Message) -> None:
                messages.append(message)

            await exposition({**scope, "method": "GET"}, receive, collect)
        except Exception as exc:
            logger.exception("metrics export failed")
            await _unavailable(send, "Metrics export failed", str(exc))
            return
        for message in messages:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *NO_CACHE_HEADERS]}
            elif method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

    return app


def _idle_closing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, also closing a connection that sends no request within the idle timeout."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleClosingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # uvicorn arms the keep-alive timer only after a response; arm it for the first request too.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    return IdleClosingH11Protocol


class MetricsServer:
    """An ASGI app (``/metrics`` by default) served by uvicorn on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        backlog: int = BACKLOG,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._socket = socket.create_server((host, port), family=family, backlog=backlog)
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            cast(Any, app),
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=backlog,
            timeout_keep_alive=int(idle_timeout),
            server_header=False,
            http=_idle_closing_protocol(),
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where ``/metrics`` is served."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{METRICS_PATH}"

    def start(self, timeout: float = 10.0) -> MetricsServer:
        """Serve from a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="tasker-metrics-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise MetricsError(f"metrics server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        logger.info("serving metrics on %s", self.url)
        return self

    def run(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or, in the main thread, SIGINT/SIGTERM)."""
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()


def serve_metrics(
    backend: MetricsBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, auth: MetricsAuth | None = None
) -> MetricsServer:
    """Serve ``/metrics`` of ``backend`` from a background thread; stop with ``server.stop()``."""
    return MetricsServer(make_metrics_app(lambda: backend, auth), host, port).start()


def run_metrics_server(
    backend: MetricsBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, auth: MetricsAuth | None = None
) -> None:
    """Serve ``/metrics`` of ``backend`` in the calling thread until interrupted."""
    server = MetricsServer(make_metrics_app(lambda: backend, auth), host, port)
    logger.info("serving metrics on %s", server.url)
    server.run()
