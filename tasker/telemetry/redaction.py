"""Span attributes through the app's :class:`~tasker.events.Masker`: keys masked, free text scrubbed.

Event payloads reach the telemetry subscriber already masked, but attributes are assembled from them (and
from exception messages and backtraces): :class:`AttributeRedactor` passes the attributes through the same
Masker once more and converts values to OpenTelemetry attribute types (what is not one becomes scrubbed text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasker.events import Masker

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float] | list[bool]

# Values of these exact types go to the SDK as the Masker left them.
_PLAIN = frozenset({str, bool, int, float})


class AttributeRedactor:
    """Applies a :class:`Masker` to span attributes and converts their values to OTel types."""

    __slots__ = ("_masker",)

    def __init__(self, masker: Masker) -> None:
        self._masker = masker

    @property
    def masker(self) -> Masker:
        """The Masker whose keys, patterns and mask are used."""
        return self._masker

    def scrub(self, text: str) -> str:
        """``text`` with its secrets masked (:meth:`Masker.scrub`)."""
        return self._masker.scrub(text)

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
        """Masked, scrubbed attributes (one Masker pass); None values dropped, other non-OTel values as text."""
        masked = self._masker.mask(attributes)
        return {
            key: value if type(value) in _PLAIN else self._otel(value)
            for key, value in masked.items()
            if value is not None
        }

    def _otel(self, value: Any) -> AttributeValue:
        """A masked value as an OTel type: numbers and bools kept, sequences of str as lists, rest as scrubbed text."""
        if isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        return self._masker.scrub(str(value))
