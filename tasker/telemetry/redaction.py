"""The sensitive-data filter for span attributes: keys through the Masker, free text scrubbed.

Event payloads reach the telemetry subscriber already masked by key (``{"password": "[FILTERED]"}``), but
free text such as an exception message or a backtrace may still quote a secret
(``login failed: password=hunter2``). :class:`AttributeRedactor` masks attribute keys with the app's
:class:`~tasker.events.Masker` and rewrites ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key
is sensitive, URL credentials (``scheme://user:secret@host``) and ``Bearer``/``Basic`` credentials in every
string value, with the Masker's mask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tasker.events import Masker

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float] | list[bool]

_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)(?P<value>[^/\s@]+)(?=@)")
_SEPARATOR = re.compile(r"[=:\s]")
_AUTH_SCHEME = re.compile(r"(?P<head>\b(?:[Bb]earer|[Bb]asic|[Tt]oken)\s+)(?P<value>[A-Za-z0-9._~+/=-]{4,})")


def _pairs_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    # The Masker reads "-" in keys as "_": an entry "api_key" also matches "X-Api-Key" in text.
    alternatives = "|".join(re.escape(p).replace("_", "[_-]") for p in sorted(patterns, key=len, reverse=True))
    return re.compile(
        r"(?P<head>[\w.-]*(?:" + alternatives + r")[\w.-]*(?P<quote>[\"']?)\s*[:=]\s*)"
        r"(?P<value>(?:(?:bearer|basic)\s+)?(?:\"[^\"]*\"|'[^']*'|[^\s,;&)}\]]+))",
        re.IGNORECASE,
    )


class AttributeRedactor:
    """Applies a :class:`Masker` to span attributes and scrubs secrets out of their string values."""

    __slots__ = ("_mask", "_masker", "_pairs")

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._mask = masker.mask_value
        self._pairs = _pairs_pattern(masker.filter_parameters)

    @property
    def masker(self) -> Masker:
        """The Masker whose keys and mask are used."""
        return self._masker

    def scrub(self, text: str) -> str:
        """``text`` with secret values after sensitive keys, in URLs and auth headers replaced by the mask."""
        if self._pairs is None or _SEPARATOR.search(text) is None:
            return text  # every pattern needs a separator: names and ids (the common case) skip the regexes
        mask = self._mask
        text = self._pairs.sub(self._replace_pair, text)
        text = _URL_CREDENTIALS.sub(lambda m: m["head"] + mask, text)
        return _AUTH_SCHEME.sub(lambda m: m["head"] + mask, text)

    def _replace_pair(self, match: re.Match[str]) -> str:
        value = match["value"]
        mask = self._mask
        if value.strip("\"'").startswith(mask) or match.string.startswith(mask, match.start("value")):
            return match[0]
        if value[:1] in ("'", '"'):
            return f"{match['head']}{value[0]}{mask}{value[0]}"
        return match["head"] + mask

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
        """Masked, scrubbed attributes; None values dropped, other non-OTel values as text."""
        masked = self._masker.mask(attributes)
        out: dict[str, AttributeValue] = {}
        for key, value in masked.items():
            if value is None:
                continue
            out[key] = self.value(value)
        return out

    def value(self, value: Any) -> AttributeValue:
        """One attribute value: strings scrubbed, numbers and bools kept, sequences of str kept, rest as text."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [self.scrub(v) for v in value]
        return self.scrub(str(self._masker.mask_value_of(value)))
