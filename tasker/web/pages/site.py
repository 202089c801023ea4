"""What the pages of one ASGI app share: the Jinja environment with its filters, and the viewers' sessions."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from tasker import __version__
from tasker.models.stats import TaskStats
from tasker.web.pages.access import Sessions
from tasker.web.pages.graphics import STATUS_GLYPHS

__all__ = ["Site"]

#: Pages load only their own files: no inline script or style, no framing, no third-party hosts.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Seconds the overview reuses the last 24 hours' statistics.
STATS_TTL = 15.0


def when(moment: datetime | None) -> str:
    """``2026-11-29 17:54:20`` (UTC), or an em dash."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def badge(status: str) -> Markup:
    """A status badge: glyph, words and colour (a filter, not a macro: task pages show hundreds)."""
    name = escape(status)
    return Markup(
        f'<span class="badge s-{name}" data-status="{name}"><span aria-hidden="true">{STATUS_GLYPHS.get(status, "•")}'
        f"</span> {escape(status.replace('_', ' '))}</span>"
    )


def first_line(text: str | None, limit: int = 160) -> str:
    """The first line of ``text``, shortened to ``limit`` characters."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Site:
    """What the pages of one ASGI app share: templates, filters and the sessions of its viewers."""

    security_headers = SECURITY_HEADERS

    def __init__(self, stats_ttl: float = STATS_TTL) -> None:
        self.sessions = Sessions()
        self._stats_ttl = stats_ttl
        self._stats: tuple[float, TaskStats] | None = None
        self._stats_lock = threading.Lock()
        self.environment = Environment(
            loader=PackageLoader("tasker.web.pages", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters.update(when=when, seconds=seconds, first_line=first_line, badge=badge)
        self.environment.globals.update(glyphs=STATUS_GLYPHS, version=__version__)

    def day_stats(self, compute: Callable[[], TaskStats]) -> TaskStats:
        """The last 24 hours' statistics, computed at most once per ``stats_ttl`` seconds.

        They aggregate every task and step of the day (hundreds of milliseconds with 100,000 tasks) and
        change little in a few seconds; the counts by status next to them are always read fresh.
        """
        with self._stats_lock:
            if self._stats is not None and time.monotonic() - self._stats[0] < self._stats_ttl:
                return self._stats[1]
        stats = compute()
        with self._stats_lock:
            self._stats = (time.monotonic(), stats)
        return stats

    @staticmethod
    def new_csrf_token() -> str:
        """A fresh random CSRF token."""
        return secrets.token_urlsafe(32)

    def render(self, page: str, **values: Any) -> str:
        """The HTML of the template ``page``."""
        return self.environment.get_template(page).render(**values)
