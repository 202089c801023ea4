"""The names ``tasker.web`` exports."""

from __future__ import annotations

import tasker.web


def test_web_all_is_pinned() -> None:
    assert sorted(tasker.web.__all__) == [
        "Action",
        "Auth",
        "Principal",
        "Resource",
        "TokenAuth",
        "auth_from_config",
        "bearer_token",
        "create_app",
    ]
    for name in tasker.web.__all__:
        assert getattr(tasker.web, name) is not None, name
