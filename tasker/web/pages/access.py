"""Who is looking at the dashboard, and whether a form really comes from it.

A browser cannot send a bearer header, so the login form turns a token into a session: the server keeps
``session id -> token`` (per ``create_app``, in memory; sessions end when the server restarts) and the
browser holds only the random id, in an ``HttpOnly``, ``SameSite=Strict`` cookie. Each page request is
authenticated by the same :class:`~tasker.web.Auth` as the API: first as it came (a proxy's header, a
bearer token), else as if it carried its session's token. Every form carries a CSRF token that must
equal the ``tasker_csrf`` cookie (double submit, compared in constant time), and a cross-origin
``Origin`` header is refused.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from tasker.web.auth import Action, Auth, Principal, Resource

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "Sessions", "Viewer", "as_bearer", "check_csrf", "safe_path"]

SESSION_COOKIE = "tasker_session"
CSRF_COOKIE = "tasker_csrf"
#: How long a dashboard session lasts without a new login.
SESSION_SECONDS = 12 * 3600
#: Sessions kept at most (the oldest is forgotten first).
MAX_SESSIONS = 10_000


class Sessions:
    """Dashboard sessions of one ASGI app: random ids to the token each was opened with."""

    def __init__(self, lifetime: float = SESSION_SECONDS, capacity: int = MAX_SESSIONS) -> None:
        self._lifetime = lifetime
        self._capacity = capacity
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, token: str) -> str:
        """A new session id for ``token``."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[session_id] = (token, time.monotonic() + self._lifetime)
            while len(self._tokens) > self._capacity:
                self._tokens.popitem(last=False)
        return session_id

    def token(self, session_id: str | None) -> str | None:
        """The token of a live session, or None."""
        if not session_id:
            return None
        with self._lock:
            found = self._tokens.get(session_id)
            if found is not None and found[1] < time.monotonic():
                del self._tokens[session_id]
                found = None
        return found[0] if found else None

    def close(self, session_id: str | None) -> None:
        """Forget a session (logout)."""
        with self._lock:
            self._tokens.pop(session_id or "", None)


def as_bearer(request: Request, token: str) -> Request:
    """``request`` as if it carried ``Authorization: Bearer <token>``."""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", f"Bearer {token}".encode()))
    return Request({**request.scope, "headers": headers})


@dataclass(frozen=True)
class Viewer:
    """The principal behind a page request (None: no authentication configured) and what it may do."""

    auth: Auth | None
    principal: Principal | None
    logged_in: bool = False

    def can(self, resource: Resource, action: Action) -> bool:
        """Whether the page may offer ``action`` on ``resource``."""
        if self.auth is None:
            return True
        return self.principal is not None and self.auth.authorize(self.principal, resource, action)

    @classmethod
    def of(cls, request: Request, auth: Auth | None, sessions: Sessions) -> Viewer:
        """Authenticate ``request`` directly, else through its session cookie; ``principal`` None if neither."""
        if auth is None:
            return cls(None, None)
        principal = auth.authenticate(request)
        if principal is not None:
            return cls(auth, principal)
        token = sessions.token(request.cookies.get(SESSION_COOKIE))
        principal = auth.authenticate(as_bearer(request, token)) if token else None
        return cls(auth, principal, logged_in=principal is not None)


def check_csrf(request: Request, submitted: str | None) -> bool:
    """Whether a form post is the dashboard's own: same origin (when stated) and the CSRF token of its cookie."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie and submitted) and hmac.compare_digest(cookie.encode(), (submitted or "").encode())


def safe_path(target: str | None, default: str = "/") -> str:
    """A local path to redirect to (``/tasks?...``); anything else (another host, ``//x``) becomes ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default
