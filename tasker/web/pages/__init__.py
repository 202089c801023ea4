"""The web dashboard: server-rendered pages over the API's functions, mounted at ``/`` by ``create_app``.

Overview, tasks (filters in the URL, keyset pages, bulk retry), a task (DAG, steps, waterfall, actions),
templates and the event catalog; Jinja templates, one small vendored script for live refresh, no CDN.
"""

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from tasker.web.pages.site import Site
from tasker.web.pages.views import router

__all__ = ["install_pages"]


def install_pages(api: FastAPI) -> None:
    """Mount the dashboard on ``api``: its pages at ``/`` and its static files at ``/static``."""
    api.state.tasker_pages = Site()
    api.include_router(router)
    api.mount("/static", StaticFiles(packages=[("tasker.web.pages", "static")]), name="static")
