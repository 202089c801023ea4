"""parse_retry_after: delay-seconds, HTTP-dates and junk."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tasker.handlers import parse_retry_after

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), ("0", 0.0), (" 120 ", 120.0), ("86400", 86400.0)]
)
def test_digits_are_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_http_date_in_the_future_is_seconds_until_then() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now=NOW) == 90.0


def test_http_date_is_rounded_up_to_whole_seconds() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=NOW - timedelta(milliseconds=300)) == 11.0


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:00:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_http_date_in_the_past_or_now_is_one_second(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 1.0


def test_naive_now_is_taken_as_utc() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=NOW.replace(tzinfo=None)) == 5.0


def test_http_date_with_an_offset() -> None:
    later = (NOW + timedelta(seconds=42)).astimezone(UTC)
    assert parse_retry_after(format_datetime(later, usegmt=True), now=NOW) == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 09:28:42 +0200", now=NOW) == 42.0


def test_default_now_is_the_current_time() -> None:
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after(future)
    assert seconds is not None and 28 <= seconds <= 31


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_or_blank_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "7s", "\u00b2", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_unparseable_is_none_and_logged_at_debug(value: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="tasker.handlers.api"):
        assert parse_retry_after(value, now=NOW) is None
    assert any("Retry-After" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
