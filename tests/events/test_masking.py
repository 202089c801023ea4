"""Masking sensitive keys: matching rules, recursion, copy-on-write."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import pytest

from tasker.config import DEFAULT_FILTER_PARAMETERS
from tasker.events import Masker

M = "[FILTERED]"


@pytest.fixture
def masker() -> Masker:
    return Masker(DEFAULT_FILTER_PARAMETERS)


@pytest.mark.parametrize(
    "key", ["password", "PASSWORD", "db_password", "X-Api-Key", "api_key", "client_secret", "AuthToken", "ssn"]
)
def test_sensitive_keys(masker: Masker, key: str) -> None:
    assert masker.is_sensitive(key)
    assert masker.mask({key: "s3cr3t", "name": "x"}) == {key: M, "name": "x"}


@pytest.mark.parametrize("key", ["task_id", "step_name", "status", "timestamp", "username", 7, None])
def test_plain_keys(masker: Masker, key: Any) -> None:
    assert not masker.is_sensitive(key)


def test_nested_secrets_are_masked_without_mutating_the_original(masker: Masker) -> None:
    payload = {
        "task_id": 1,
        "task_context": {
            "user": {"name": "ann", "Password": "hunter2"},
            "cards": [{"card_number": "4111", "label": "work"}, "plain", ["x", {"cvv": "123"}]],
            "headers": ({"Authorization": "Bearer t"},),
        },
        "step_results": {"ok": True},
    }
    original = copy.deepcopy(payload)
    masked = masker.mask(payload)
    assert payload == original
    assert masked == {
        "task_id": 1,
        "task_context": {
            "user": {"name": "ann", "Password": M},
            "cards": [{"card_number": M, "label": "work"}, "plain", ["x", {"cvv": M}]],
            "headers": ({"Authorization": M},),
        },
        "step_results": {"ok": True},
    }
    # copy-on-write: untouched branches are shared, not copied
    assert masked["step_results"] is payload["step_results"]


def test_nothing_to_mask_returns_the_same_object(masker: Masker) -> None:
    payload = {"task_id": 1, "nested": {"a": [1, {"b": 2}]}, "t": (1, 2)}
    assert masker.mask(payload) is payload
    assert masker.mask(payload) is payload  # memoised path too


def test_a_secret_holding_a_structure_is_masked_whole(masker: Masker) -> None:
    assert masker.mask({"credentials": {"password": "x"}, "secret": {"a": 1}}) == {
        "credentials": {"password": M},
        "secret": M,
    }


def test_dict_subclasses_are_searched(masker: Masker) -> None:
    payload = {"a": OrderedDict(token="t", keep=1)}
    assert masker.mask(payload) == {"a": {"token": M, "keep": 1}}


def test_large_payloads_use_the_same_rules(masker: Masker) -> None:
    payload: dict[str, Any] = {f"field_{i}": i for i in range(20)}
    payload["deep"] = {f"k{i}": {"api_key": i} for i in range(10)}
    masked = masker.mask(payload)
    assert all(masked["deep"][f"k{i}"] == {"api_key": M} for i in range(10))
    assert payload["deep"]["k0"] == {"api_key": 0}


def test_custom_filter_and_mask() -> None:
    masker = Masker(["Internal-Note"], mask="***")
    assert masker.mask({"internal_note": "x", "x-internal-note-id": 2, "password": "p"}) == {
        "internal_note": "***",
        "x-internal-note-id": "***",
        "password": "p",
    }


def test_empty_filter_is_identity() -> None:
    masker = Masker([])
    payload = {"password": "p"}
    assert not masker.enabled
    assert masker.mask(payload) is payload
    assert masker.redact([payload]) == [payload]


def test_redact_lists(masker: Masker) -> None:
    assert masker.redact([{"token": 1}, 2]) == [{"token": M}, 2]
    assert masker.redact("password") == "password"


def test_memo_is_bounded(masker: Masker) -> None:
    for i in range(10_000):
        masker.mask({f"key_{i}": i})
    assert len(masker._clean) <= 4096
    assert masker.mask({"key_1": 1, "password": "x"}) == {"key_1": 1, "password": M}


# -- free text ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login failed: password=hunter2 user=ann", f"login failed: password={M} user=ann"),
        ("db_password: 'x y z' next", f"db_password: '{M}' next"),
        ('{"api_key": "ak_1", "id": 3}', f'{{"api_key": "{M}", "id": 3}}'),
        ("Authorization: Bearer eyJ.abc.def", f"Authorization: {M}"),
        ("sent Bearer eyJ.abc.def upstream", f"sent Bearer {M} upstream"),
        ("header Basic dXNlcjpwYXNz", f"header Basic {M}"),
        ("postgresql://bob:s3cret@db/x", f"postgresql://bob:{M}@db/x"),
        ("card 4111 1111 1111 1111 ok", f"card {M} ok"),
        ("card 4111-1111-1111-1111", f"card {M}"),
        ("paid with 5500005555555559.", f"paid with {M}."),
        ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),  # Luhn fails
        ("at 2026-11-29T17:42:28Z step 12 of 1234567890", "at 2026-11-29T17:42:28Z step 12 of 1234567890"),
        ("trace 0af7651916cd43dd8448eb211c80319c", "trace 0af7651916cd43dd8448eb211c80319c"),
        ("plain", "plain"),
    ],
)
def test_scrub_free_text(masker: Masker, text: str, expected: str) -> None:
    assert masker.scrub(text) == expected


def test_values_under_innocent_keys_are_scrubbed(masker: Masker) -> None:
    payload = {"note": "password=hunter2", "cc": 4111111111111111, "n": 4111111111111112, "ok": True, "id": 7}
    assert masker.mask(payload) == {"note": f"password={M}", "cc": M, "n": 4111111111111112, "ok": True, "id": 7}
    assert masker.redact(["Bearer abcdefgh", ("card 4111111111111111",)]) == [f"Bearer {M}", (f"card {M}",)]
    clean = {"note": "fine", "nested": {"list": ["a", 1]}}
    assert masker.mask(clean) is clean


def test_timestamps_pass_unscrubbed_and_unremembered(masker: Masker) -> None:
    """Payloads carry unique ISO-8601 timestamps: none holds a secret, so none is searched or remembered."""
    stamps = [f"2026-11-30T05:{m:02d}:{s:02d}.{m * s:06d}+00:00" for m in range(10) for s in range(10)]
    stamps += ["2026-11-30T05:30:00", "2026-11-30 05:30:00.5Z", "2026-11-30T05:30"]
    assert [masker.scrub(text) for text in stamps] == stamps
    assert masker._scrubbed == {}
    assert masker.scrub("2026-11-30T05:30:00 password=hunter2") == f"2026-11-30T05:30:00 password={M}"
    assert masker.scrub("2026-11-30T05:30:00 card 4111111111111111") == f"2026-11-30T05:30:00 card {M}"
    # Configured patterns still see every text, timestamps included.
    assert Masker([], patterns=[r"\d{4}-\d\d-\d\d"]).scrub("2026-11-30T05:30:00") == f"{M}T05:30:00"


def test_extra_patterns() -> None:
    masker = Masker(["password"], patterns=[r"acct-\d{6}", r"pin (?P<value>\d{4})"])
    assert masker.scrub("acct-123456 with pin 9876") == f"{M} with pin {M}"
    assert masker.redact({"x": "acct-000001"}) == {"x": M}


def test_an_invalid_pattern_is_a_configuration_error() -> None:
    from tasker.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"filter pattern '\('"):
        Masker([], patterns=["("])
