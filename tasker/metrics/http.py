"""The ``/metrics`` HTTP endpoint: a WSGI app plus a small threaded wsgiref server (stdlib only).

The app negotiates the exposition format with prometheus_client's ``choose_encoder`` (OpenMetrics when
the ``Accept`` header asks for it, Prometheus text 0.0.4 otherwise) and answers 503 with a JSON body when
metrics are disabled or rendering fails (reference §8.10).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client.exposition import choose_encoder

from tasker.errors import MetricsError
from tasker.metrics.backend import MetricsBackend
from tasker.metrics.export import export_timestamp

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464

# How often serve_forever checks for shutdown(): a stop takes at most this long.
_SHUTDOWN_POLL_SECONDS = 0.1

#: Sent with every response: scrapes must never be served from a cache.
NO_CACHE_HEADERS = (
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *NO_CACHE_HEADERS, *extra]
    start_response(status, headers)
    return [body]


def _unavailable(start_response: StartResponse, error: str, message: str) -> list[bytes]:
    body = json.dumps({"error": error, "message": message, "timestamp": export_timestamp()}).encode("utf-8")
    return _respond(start_response, "503 Service Unavailable", body, "application/json")


def make_metrics_app(backend_factory: Callable[[], MetricsBackend]) -> WSGIApplication:
    """A WSGI app serving ``GET /metrics`` from the backend ``backend_factory()`` returns on each request."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            return _respond(start_response, "404 Not Found", b"Not Found\n", "text/plain; charset=utf-8")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _respond(
                start_response,
                "405 Method Not Allowed",
                b"Method Not Allowed\n",
                "text/plain; charset=utf-8",
                (("Allow", "GET, HEAD"),),
            )
        try:
            backend = backend_factory()
        except Exception as exc:
            logger.exception("metrics endpoint failed")
            return _unavailable(start_response, "Metrics endpoint failed", str(exc))
        if not backend.enabled:
            return _unavailable(start_response, "Metrics export failed", "Metrics collection is disabled")
        try:
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            body = encoder(backend.exposition_registry())
        except Exception as exc:
            logger.exception("metrics export failed")
            return _unavailable(start_response, "Metrics export failed", str(exc))
        return _respond(start_response, "200 OK", body if method == "GET" else b"", content_type)

    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape never blocks the next."""

    daemon_threads = True


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Sends access lines to the module logger (DEBUG) instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


def _make_server(backend: MetricsBackend, host: str, port: int) -> WSGIServer:
    server_class = _ThreadingWSGIServerV6 if ":" in host else _ThreadingWSGIServer
    try:
        return make_server(
            host,
            port,
            make_metrics_app(lambda: backend),
            server_class=server_class,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc}") from exc


def serve_metrics(
    backend: MetricsBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` from a daemon thread; stop with ``server.shutdown(); server.server_close()``.

    ``port=0`` picks a free port (read it from ``server.server_port``).
    """
    server = _make_server(backend, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
        name="tasker-metrics-http",
        daemon=True,
    )
    thread.start()
    logger.info("serving metrics on http://%s:%d%s", host, server.server_port, METRICS_PATH)
    return server, thread


def run_metrics_server(backend: MetricsBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``/metrics`` in the calling thread until interrupted."""
    with _make_server(backend, host, port) as server:
        logger.info("serving metrics on http://%s:%d%s", host, server.server_port, METRICS_PATH)
        server.serve_forever()
