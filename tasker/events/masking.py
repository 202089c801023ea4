"""Masking of sensitive values (passwords, tokens, API keys, ...) in payloads that leave the engine.

A key is sensitive when, lower-cased and with ``-`` read as ``_``, it contains any configured filter entry
(``EventsConfig.filter_parameters``): ``db_password`` and ``X-Api-Key`` match ``password`` and ``api_key``.
Masking recurses into nested dicts, lists and tuples (subclasses included; other mapping types are left
alone), copies only what it changes, and remembers its decision for every key it has seen: masking a typical
payload costs one C-level subset test of its keys and one C-level pass over its values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import compress
from typing import Any, Final

#: Mask used when none is configured (same default as ``EventsConfig.filter_mask``).
DEFAULT_MASK: Final = "[FILTERED]"

# Keys seen are remembered; beyond this many distinct keys a memo is reset so that payloads with unbounded
# key sets (user results keyed by ids) cannot grow it forever.
_MEMO_LIMIT: Final = 4096

# Mappings up to this size are scanned with a plain loop (measured faster than the C-level pipeline there).
_SMALL: Final = 6


def _normalise(key: str) -> str:
    return key.lower().replace("-", "_")


class _ContainerTypes(dict[type, bool]):
    """type -> whether masking must look inside its values; filled on first sight of each type."""

    def __missing__(self, cls: type) -> bool:
        hit = issubclass(cls, (dict, list, tuple))
        self[cls] = hit
        return hit


class Masker:
    """Replaces the values of sensitive keys with a mask, recursively, without mutating its input."""

    __slots__ = ("_clean", "_is_container", "_patterns", "_sensitive", "mask_value")

    def __init__(self, filter_parameters: Iterable[str], mask: str = DEFAULT_MASK) -> None:
        self._patterns: tuple[str, ...] = tuple(
            dict.fromkeys(_normalise(p) for p in filter_parameters if p and p.strip())
        )
        self.mask_value = mask
        # Decisions already made, per key: checking a payload's keys is then one C-level subset test.
        self._clean: set[Any] = set()
        self._sensitive: set[Any] = set()
        self._is_container = _ContainerTypes().__getitem__

    @property
    def filter_parameters(self) -> tuple[str, ...]:
        """The normalised filter entries."""
        return self._patterns

    @property
    def enabled(self) -> bool:
        """False when there is nothing to filter (masking is then the identity)."""
        return bool(self._patterns)

    def is_sensitive(self, key: object) -> bool:
        """Whether values stored under ``key`` are masked."""
        if key in self._clean:
            return False
        if key in self._sensitive:
            return True
        hit = isinstance(key, str) and any(p in _normalise(key) for p in self._patterns)
        memo = self._sensitive if hit else self._clean
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo.add(key)
        return hit

    def mask(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """``payload`` with sensitive values masked; the same object when nothing needed masking."""
        if not self._patterns:
            return payload
        return self._mask_mapping(payload)

    def mask_value_of(self, value: Any) -> Any:
        """Mask sensitive keys inside any value (mapping, list, tuple or scalar)."""
        if not self._patterns:
            return value
        return self._mask_any(value)

    def _mask_mapping(self, data: Mapping[Any, Any]) -> Mapping[Any, Any]:
        out: dict[Any, Any] | None = None
        if not data.keys() <= self._clean:
            mask = self.mask_value
            for key in [k for k in data if self.is_sensitive(k)]:
                value = data[key]
                if value is mask or (type(value) is str and value == mask):
                    continue  # already masked
                if out is None:
                    out = dict(data)
                out[key] = mask
        # Only containers can hide sensitive keys. In larger mappings they are found by a C-level pass
        # (compress/map) rather than a Python loop over every value; for a few items the loop is cheaper.
        is_container = self._is_container
        if len(data) > _SMALL:
            containers: Iterable[tuple[Any, Any]] = compress(data.items(), map(is_container, map(type, data.values())))
        else:
            containers = [(k, v) for k, v in data.items() if is_container(type(v))]
        for key, value in containers:
            if out is not None and out[key] is not value:
                continue  # masked above
            new = self._mask_mapping(value) if type(value) is dict else self._mask_any(value)
            if new is not value:
                if out is None:
                    out = dict(data)
                out[key] = new
        return data if out is None else out

    def _mask_any(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self._mask_mapping(value)
        if isinstance(value, (list, tuple)):
            changed: list[Any] | None = None
            is_container = self._is_container
            for index, item in enumerate(value):
                if is_container(type(item)):
                    new = self._mask_any(item)
                    if new is not item:
                        if changed is None:
                            changed = list(value)
                        changed[index] = new
            if changed is None:
                return value
            return tuple(changed) if isinstance(value, tuple) else changed
        return value
