"""What routes receive by dependency injection: the web context and the authorization check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tasker.app import Tasker
from tasker.web.auth import Action, Auth, Principal, Resource
from tasker.web.errors import ApiError
from tasker.web.presenter import Presenter


@dataclass(frozen=True)
class WebContext:
    """One API app's collaborators: the tasker app, its authenticator (None: open) and the presenter."""

    tasker: Tasker
    auth: Auth | None
    presenter: Presenter
    ready_timeout: float


def web_context(request: Request) -> WebContext:
    """The context ``create_app`` stored on the ASGI app."""
    context: WebContext = request.app.state.tasker_web
    return context


Context = Annotated[WebContext, Depends(web_context)]


def check_access(context: WebContext, request: Request, resource: Resource, action: Action) -> Principal | None:
    """The authenticated principal allowed to do ``action`` on ``resource``; ApiError 401/403 otherwise."""
    auth = context.auth
    if auth is None:
        return None
    principal = auth.authenticate(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "missing or invalid credentials", headers={"WWW-Authenticate": auth.scheme})
    if not auth.authorize(principal, resource, action):
        raise ApiError(403, "forbidden", f"not allowed to {action} {resource}")
    return principal


def requires(resource: Resource, action: Action) -> Callable[..., Principal | None]:
    """A dependency that authenticates the request and authorizes ``action`` on ``resource``."""

    def dependency(request: Request, context: Context) -> Principal | None:
        return check_access(context, request, resource, action)

    return dependency
