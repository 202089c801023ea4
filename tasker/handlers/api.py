"""ApiStepHandler: a step handler that calls an HTTP API with httpx and classifies the response.

Subclasses implement :meth:`~tasker.handlers.base.StepHandler.process` and return the
``httpx.Response`` (or a dict with ``status``, ``body``, ``headers``)::

    class CreateOrder(ApiStepHandler):
        def process(self, task, sequence, step):
            return self.client.post("/orders", json=task.context)

:meth:`ApiStepHandler.handle` classifies the status *before* ``process_results`` runs, so a subclass
overriding ``process_results`` only ever sees successful responses (as in Ruby Tasker):

* 200-226: success, then ``process_results`` stores :meth:`ApiStepHandler.response_results`;
* 429, 503: :class:`~tasker.errors.RetryableError` with ``retry_after`` from ``Retry-After``;
* 400, 401, 403, 404, 422: :class:`~tasker.errors.PermanentError` with ``error_code="HTTP_<status>"``;
* anything else: :class:`~tasker.errors.RetryableError` (its delay: see ``retry_delay`` below).

Paths are joined to ``url`` as Faraday joins them: ``/carts/1`` (leading slash) replaces the base
path, ``carts/1`` is appended to it. Transport errors raised by httpx inside ``process()``
(``ConnectError``, ``ReadTimeout``...) propagate unchanged; the engine retries them.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import re
import ssl
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from tasker.errors import ConfigurationError, PermanentError, RetryableError
from tasker.handlers.aio import run_blocking
from tasker.handlers.base import StepHandler
from tasker.views import StepSequence, StepView, TaskView

logger = logging.getLogger(__name__)

DEFAULT_HEADERS: dict[str, str] = {"Content-Type": "application/json", "Accept": "application/json"}
DEFAULT_TIMEOUT = 30.0
RETRYABLE_STATUSES = frozenset({429, 503})
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})
SUCCESS_STATUSES = range(200, 227)
DEFAULT_RETRY_DELAY = 1.0
#: Keys of Ruby's ``ssl`` option (Faraday's SSL options) that are supported.
SSL_KEYS = frozenset({"verify", "ca_file", "client_cert", "client_key"})
#: Ruby options that switch on the handler's own retry delay (otherwise the engine's backoff applies).
BACKOFF_KEYS = ("retry_delay", "enable_exponential_backoff", "jitter_factor")
CONTEXT_BODY_LIMIT = 2048
MESSAGE_BODY_LIMIT = 500

_DIGITS = re.compile(r"[0-9]+")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None if absent/unparseable.

    All digits: that many seconds. An HTTP-date: seconds until then, at least 1 (a past date gives 1).
    ``now`` (default: the current UTC time; naive means UTC) is the reference for dates.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DIGITS.fullmatch(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        logger.debug("ignoring unparseable Retry-After header %r", value)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return float(max(math.ceil((when - reference).total_seconds()), 1))


def join_url(base: httpx.URL, url: httpx.URL | str) -> httpx.URL:
    """Faraday's rule: a relative path with a leading ``/`` replaces the base path, others are appended."""
    target = httpx.URL(url)
    if not target.is_relative_url:
        return target
    path, _, query = target.raw_path.partition(b"?")
    if not path.startswith(b"/"):
        base_path = base.raw_path.partition(b"?")[0]
        path = (base_path if base_path.endswith(b"/") else base_path + b"/") + path
    return base.copy_with(raw_path=path + (b"?" + query if query else b""))


class FaradayClient(httpx.Client):
    """An ``httpx.Client`` joining request paths to ``base_url`` as Faraday does (see :func:`join_url`)."""

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        return super().build_request(method, join_url(self.base_url, url), **kwargs)


class ApiStepHandler(StepHandler):
    """A step handler whose ``process()`` calls an HTTP API through :attr:`client`.

    ``handler_config`` keys: ``url`` (absolute http(s) base URL, required), ``params`` (default
    query parameters), ``headers`` (merged over JSON ``Content-Type``/``Accept`` defaults),
    ``timeout`` (seconds, default 30), TLS as ``verify`` (bool or CA bundle path) or as Ruby's
    ``ssl`` mapping (``verify``, ``ca_file``, ``client_cert``, ``client_key``), and Ruby's retry
    options ``retry_delay`` (seconds, default 1), ``enable_exponential_backoff`` (default true) and
    ``jitter_factor`` (0-1): when any of these is given, a retryable status without ``Retry-After``
    asks for ``retry_delay * 2**(attempt-1)`` seconds (``retry_delay`` when not exponential), varied
    by up to ``jitter_factor`` either way; otherwise the engine's backoff applies. ``type`` is
    ignored; invalid values raise :class:`~tasker.errors.ConfigurationError` at construction.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.base_url: str = _validate_url(self.config.get("url"))
        self.params: dict[str, Any] = _mapping(self.config, "params")
        self.headers: dict[str, str] = {
            **DEFAULT_HEADERS,
            **{str(k): str(v) for k, v in _mapping(self.config, "headers").items()},
        }
        self.timeout: float = _timeout(self.config.get("timeout", DEFAULT_TIMEOUT))
        self.verify: bool | str = _verify(self.config.get("verify", True))
        self.ssl: dict[str, Any] = _ssl(self.config)
        self.retry_delay: float | None = _retry_delay(self.config)
        self.exponential_backoff: bool = _bool(self.config, "enable_exponential_backoff", True)
        self.jitter_factor: float = _fraction(self.config, "jitter_factor")
        self.rng = random.Random()
        self._client: httpx.Client | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, created by :meth:`build_client` on first use."""
        if self._client is None or self._client.is_closed:
            client = self._client = self.build_client()
            # Close the connection pool if the handler is dropped without close().
            self._finalizer = weakref.finalize(self, client.close)
        return self._client

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the httpx client: base URL, params, headers, timeout, TLS."""
        return {
            "base_url": self.base_url,
            "params": self.params,
            "headers": self.headers,
            "timeout": self.timeout,
            "verify": self.ssl_context(),
        }

    def ssl_context(self) -> bool | ssl.SSLContext:
        """``verify`` for httpx: False, or a context honouring the CA bundle and client certificate."""
        if self.ssl.get("verify", True) is False or self.verify is False:
            return False
        cafile = self.ssl.get("ca_file") or (self.verify if isinstance(self.verify, str) else None)
        context = ssl.create_default_context(cafile=cafile)
        if "client_cert" in self.ssl:
            context.load_cert_chain(self.ssl["client_cert"], self.ssl.get("client_key"))
        return context

    def build_client(self) -> httpx.Client:
        """Create the client from the config; override to add auth, transports, event hooks..."""
        return FaradayClient(**self.client_options())

    def close(self) -> None:
        """Close the client if it was created; a later :attr:`client` access makes a new one."""
        if self._finalizer is not None:
            self._finalizer()  # closes the client, at most once
            self._finalizer = None
        self._client = None

    def handle(self, task: TaskView, sequence: StepSequence, step: StepView) -> None:
        """``process()``, then the status check (:meth:`check_response`), then ``process_results()``.

        The client is closed afterwards (the engine builds a handler per attempt).
        """
        try:
            initial = step.results
            output = self.run_process(task, sequence, step)
            self.classify(step, output)
            self.process_results(step, output, initial)
        finally:
            self.close()

    def classify(self, step: StepView, output: Any) -> None:
        """Raise for a failing HTTP response (applying the retry options); other outputs pass."""
        if not _is_response(output):
            return
        try:
            self.check_response(output)
        except RetryableError as exc:
            if exc.retry_after is None:
                exc.retry_after = self.retry_backoff(step.attempts + 1)
            raise

    def retry_backoff(self, attempt: int) -> float | None:
        """Seconds before retrying after failed attempt ``attempt`` (1-based); None: the engine decides."""
        if self.retry_delay is None:
            return None
        delay = self.retry_delay * (2 ** (attempt - 1) if self.exponential_backoff else 1)
        if self.jitter_factor:
            delay *= 1 + self.rng.uniform(-self.jitter_factor, self.jitter_factor)
        return max(delay, 0.0)

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        """Store :meth:`response_results` of a (successful) response unless ``process()`` set results.

        Outputs that are neither an ``httpx.Response`` nor a dict with ``status`` are stored as-is.
        """
        if not _is_response(process_output):
            super().process_results(step, process_output, initial_results)
        elif step.results is initial_results or step.results == initial_results:
            step.results = self.response_results(process_output)

    def check_response(self, response: httpx.Response | Mapping[str, Any]) -> None:
        """Raise the error the response's status calls for; return if it is a success."""
        status = _status(response)
        if status in SUCCESS_STATUSES:
            return
        body = _body_text(response)
        context: dict[str, Any] = {
            "status": status,
            "url": _url(response),
            "body": body[:CONTEXT_BODY_LIMIT],
            "headers": _headers(response),
        }
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(_header(response, "Retry-After"))
            raise RetryableError(
                f"API call failed with retryable status {status}", retry_after=retry_after, context=context
            )
        if status in PERMANENT_STATUSES:
            raise PermanentError(
                f"API call failed with permanent status {status}: {body[:MESSAGE_BODY_LIMIT]}",
                error_code=f"HTTP_{status}",
                context=context,
            )
        raise RetryableError(
            f"API call failed with server error {status}: {body[:MESSAGE_BODY_LIMIT]}", context=context
        )

    def response_results(self, response: httpx.Response | Mapping[str, Any]) -> Any:
        """The results stored for a successful response (override to reshape them).

        Default: the decoded body of a JSON response, otherwise ``{"status": ..., "body": text}``;
        a dict output is stored unchanged.
        """
        if not isinstance(response, httpx.Response):
            return dict(response)
        if "json" in response.headers.get("Content-Type", "").lower():
            try:
                return response.json()
            except ValueError:
                logger.debug("response from %s claims JSON but does not parse", _url(response))
        return {"status": response.status_code, "body": response.text}


class FaradayAsyncClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` joining request paths to ``base_url`` as Faraday does (see :func:`join_url`)."""

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        return super().build_request(method, join_url(self.base_url, url), **kwargs)


class AsyncApiStepHandler(ApiStepHandler):
    """:class:`ApiStepHandler` with an ``async def process`` using :attr:`async_client` (``httpx.AsyncClient``).

    Same configuration, URL joining, classification and retry options; ``process`` runs on the app's
    event loop and the client is closed there once it returns::

        class CreateOrder(AsyncApiStepHandler):
            async def process(self, task, sequence, step):
                return await self.async_client.post("orders", json=task.context)
    """

    _async_client: httpx.AsyncClient | None = None

    @property
    def async_client(self) -> httpx.AsyncClient:
        """The async HTTP client of this attempt, created by :meth:`build_async_client` on first use."""
        if self._async_client is None:
            self._async_client = self.build_async_client()
        return self._async_client

    def build_async_client(self) -> httpx.AsyncClient:
        """Create the async client from the config; override to add auth, transports, event hooks..."""
        return FaradayAsyncClient(**self.client_options())

    @classmethod
    def is_async(cls) -> bool:
        return True

    def run_process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return run_blocking(self._process_then_close(task, sequence, step), self._loop, self.timeout, step.name)

    async def _process_then_close(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        try:
            output = self.process(task, sequence, step)
            return await output if inspect.isawaitable(output) else output
        finally:
            if self._async_client is not None:
                await self._async_client.aclose()
                self._async_client = None


def _is_response(output: Any) -> bool:
    return isinstance(output, httpx.Response) or (isinstance(output, Mapping) and "status" in output)


def _status(response: httpx.Response | Mapping[str, Any]) -> int:
    if isinstance(response, httpx.Response):
        return response.status_code
    try:
        return int(response["status"])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"response 'status' must be an integer, got {response['status']!r}") from exc


def _url(response: httpx.Response | Mapping[str, Any]) -> str | None:
    if not isinstance(response, httpx.Response):
        url = response.get("url")
        return None if url is None else str(url)
    try:
        request = response.request
    except RuntimeError:  # a Response built without a request
        return None
    return str(request.url)


def _body_text(response: httpx.Response | Mapping[str, Any]) -> str:
    if isinstance(response, httpx.Response):
        return response.text
    body = response.get("body")
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return body if isinstance(body, str) else repr(body)


def _headers(response: httpx.Response | Mapping[str, Any]) -> dict[str, str]:
    raw = response.headers if isinstance(response, httpx.Response) else response.get("headers") or {}
    return {str(k): str(v) for k, v in raw.items()}


def _header(response: httpx.Response | Mapping[str, Any], name: str) -> str | None:
    if isinstance(response, httpx.Response):
        value: str | None = response.headers.get(name)
        return value
    wanted = name.lower()
    for key, value in _headers(response).items():
        if key.lower() == wanted:
            return value
    return None


def _validate_url(url: Any) -> str:
    if url is None or (isinstance(url, str) and not url.strip()):
        raise ConfigurationError("ApiStepHandler: handler_config 'url' is required (the API's base URL)")
    if not isinstance(url, str):
        raise ConfigurationError(f"ApiStepHandler: handler_config 'url' must be a string, got {url!r}")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        raise ConfigurationError(f"ApiStepHandler: handler_config 'url' is not a valid URL: {url!r}") from exc
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ConfigurationError(
            f"ApiStepHandler: handler_config 'url' must be an absolute http(s) URL with a host, got {url!r}"
        )
    return url.strip()


def _mapping(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"ApiStepHandler: handler_config '{key}' must be a mapping, got {value!r}")
    return dict(value)


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ConfigurationError(
            f"ApiStepHandler: handler_config 'timeout' must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def _ssl(config: Mapping[str, Any]) -> dict[str, Any]:
    options = _mapping(config, "ssl")
    unknown = sorted(set(options) - SSL_KEYS)
    if unknown:
        raise ConfigurationError(
            f"ApiStepHandler: handler_config 'ssl' has unsupported key(s) {unknown}; supported: {sorted(SSL_KEYS)}"
        )
    if "verify" in options and not isinstance(options["verify"], bool):
        raise ConfigurationError(f"ApiStepHandler: 'ssl.verify' must be true or false, got {options['verify']!r}")
    for key in ("ca_file", "client_cert", "client_key"):
        if key in options and not (isinstance(options[key], str) and options[key].strip()):
            raise ConfigurationError(f"ApiStepHandler: 'ssl.{key}' must be a file path, got {options[key]!r}")
    if "client_key" in options and "client_cert" not in options:
        raise ConfigurationError("ApiStepHandler: 'ssl.client_key' needs 'ssl.client_cert'")
    if "verify" in config and ("verify" in options or "ca_file" in options):
        raise ConfigurationError("ApiStepHandler: give TLS verification as 'verify' or in 'ssl', not both")
    return options


def _retry_delay(config: Mapping[str, Any]) -> float | None:
    if not any(key in config for key in BACKOFF_KEYS):
        return None
    value = config.get("retry_delay", DEFAULT_RETRY_DELAY)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
        raise ConfigurationError(f"ApiStepHandler: 'retry_delay' must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"ApiStepHandler: '{key}' must be true or false, got {value!r}")
    return value


def _fraction(config: Mapping[str, Any], key: str) -> float:
    value = config.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError(f"ApiStepHandler: '{key}' must be a number from 0 to 1, got {value!r}")
    return float(value)


def _verify(value: Any) -> bool | str:
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value
    raise ConfigurationError(
        f"ApiStepHandler: handler_config 'verify' must be true/false or a CA bundle path, got {value!r}"
    )


__all__ = [
    "ApiStepHandler",
    "AsyncApiStepHandler",
    "FaradayAsyncClient",
    "FaradayClient",
    "join_url",
    "parse_retry_after",
]
