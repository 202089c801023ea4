"""tasker.web: the REST API (``create_app``, served by ``tasker serve``) and its authentication.

A thin adapter over the library, like the CLI: routes call the app's functions, every body is a pydantic
model (``/openapi.json``, ``/docs``), one handler maps the TaskerError tree to statuses and the error shape
``{"error": {"code", "message", "details"}}``, and user data is masked on the way out.
"""

from tasker.web.app import create_app
from tasker.web.auth import Action, Auth, Principal, Resource, TokenAuth, auth_from_config, bearer_token

__all__ = [
    "Action",
    "Auth",
    "Principal",
    "Resource",
    "TokenAuth",
    "auth_from_config",
    "bearer_token",
    "create_app",
]
