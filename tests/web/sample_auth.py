"""A custom authenticator configured by import path in the auth tests."""

from __future__ import annotations

from starlette.requests import Request

from tasker.web import Action, Auth, Principal, Resource


class HeaderAuth(Auth):
    """``X-User: <name>`` authenticates; only ``admin`` may act, anyone may read tasks but not stats."""

    scheme = "X-User"

    def authenticate(self, request: Request) -> Principal | None:
        user = request.headers.get("x-user")
        return Principal(name=user) if user else None

    def authorize(self, principal: Principal, resource: Resource, action: Action) -> bool:
        if principal.name == "admin":
            return True
        return action == "read" and resource != "stats"
