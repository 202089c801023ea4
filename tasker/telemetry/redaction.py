"""Span attributes through the app's :class:`~tasker.events.Masker`: keys masked, free text scrubbed.

Event payloads reach the telemetry subscriber already masked, but attributes are assembled from them (and
from exception messages and backtraces): :class:`AttributeRedactor` passes every attribute through the same
Masker once more and converts values to OpenTelemetry attribute types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasker.events import Masker

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float] | list[bool]


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
        """Masked, scrubbed attributes; None values dropped, other non-OTel values as text."""
        masked = self._masker.mask(attributes)
        return {key: self.value(value) for key, value in masked.items() if value is not None}

    def value(self, value: Any) -> AttributeValue:
        """One attribute value: redacted; numbers and bools kept, sequences of str kept, rest as text."""
        value = self._masker.redact(value)
        if isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        return str(value)
