"""Authentication and authorization of API requests.

An :class:`Auth` answers two questions: who is calling (``authenticate(request) -> Principal | None``) and
may they do this (``authorize(principal, resource, action) -> bool``). Resources are ``task``, ``step``,
``template``, ``event``, ``stats`` and ``metrics``; actions ``read``, ``create``, ``retry``, ``cancel`` and
``resolve``. :class:`TokenAuth` (the built-in) checks bearer tokens listed in ``web.tokens``: the ``read``
scope allows reading, ``write`` every other action. A custom class named by ``web.authenticator``
(``package.module:Class``, built with no arguments) replaces it; :func:`auth_from_config` picks one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request

from tasker.config import WebConfig
from tasker.errors import ConfigurationError

__all__ = ["Action", "Auth", "Principal", "Resource", "TokenAuth", "auth_from_config", "bearer_token"]

Resource = Literal["task", "step", "template", "event", "stats", "metrics"]
Action = Literal["read", "create", "retry", "cancel", "resolve"]


@dataclass(frozen=True)
class Principal:
    """Who made a request: a name (never the secret itself), its scopes and anything an authenticator adds."""

    name: str
    scopes: frozenset[str] = frozenset()
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)


class Auth:
    """Base class of authenticators: override both methods (the defaults refuse everything)."""

    #: The scheme named in ``WWW-Authenticate`` on 401 responses.
    scheme: str = "Bearer"

    def authenticate(self, request: Request) -> Principal | None:
        """The caller of ``request``, or None when its credentials are missing or wrong (-> 401)."""
        return None

    def authorize(self, principal: Principal, resource: Resource, action: Action) -> bool:
        """Whether ``principal`` may perform ``action`` on ``resource`` (False -> 403)."""
        return False


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class TokenAuth(Auth):
    """Bearer tokens known by their SHA-256 digest; compared in constant time, never stored or logged in clear."""

    def __init__(self, tokens: Iterable[tuple[str, Iterable[str]]]) -> None:
        """``tokens``: ``(hex SHA-256 digest of the token, scopes)`` pairs."""
        self._tokens = [(bytes.fromhex(digest), frozenset(scopes)) for digest, scopes in tokens]

    @classmethod
    def from_config(cls, config: WebConfig) -> TokenAuth:
        """The tokens of ``web.tokens``; a ``token_env`` variable that is unset or empty is a ConfigurationError."""
        pairs = []
        for entry in config.tokens:
            digest = entry.token_sha256
            if entry.token_env is not None:
                secret = os.environ.get(entry.token_env, "")
                if not secret:
                    raise ConfigurationError(f"web.tokens: environment variable {entry.token_env} is not set")
                digest = hashlib.sha256(secret.encode()).hexdigest()
            assert digest is not None  # the config validates that one of the two is set
            pairs.append((digest, entry.scopes))
        return cls(pairs)

    def authenticate(self, request: Request) -> Principal | None:
        """The principal of a known bearer token (every known digest is compared, so timing reveals nothing)."""
        token = bearer_token(request)
        if token is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found: frozenset[str] | None = None
        for known, scopes in self._tokens:
            if hmac.compare_digest(digest, known):
                found = scopes
        if found is None:
            return None
        return Principal(name=f"token:{digest.hex()[:8]}", scopes=found)

    def authorize(self, principal: Principal, resource: Resource, action: Action) -> bool:
        """``read`` needs the read scope, every other action the write scope."""
        return ("read" if action == "read" else "write") in principal.scopes


def auth_from_config(config: WebConfig) -> Auth | None:
    """The configured authenticator (``web.authenticator``), else the token one, else None (no authentication)."""
    if config.authenticator:
        try:
            cls = pkgutil.resolve_name(config.authenticator)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(f"web.authenticator: cannot import {config.authenticator!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Auth)):
            raise ConfigurationError(f"web.authenticator: {config.authenticator!r} is not a tasker.web.Auth subclass")
        return cls()
    if config.tokens:
        return TokenAuth.from_config(config)
    return None
