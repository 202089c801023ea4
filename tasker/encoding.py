"""The one JSON encoder: every value tasker stores or publishes as JSON passes through it.

Task contexts, step inputs and results, transition metadata and event payloads are checked here, in Python,
before any database sees them, so SQLite and PostgreSQL accept and refuse exactly the same values. Allowed:
``dict`` with ``str`` keys, ``list``/``tuple``, ``str``, ``int``, finite ``float``, ``bool`` and ``None``.
Refused with an :class:`~tasker.errors.EncodingError` naming the key path (``results.at: datetime is not
JSON-serializable``): every other type (``datetime``, ``Decimal``, ``UUID``, ``set``, ``bytes``, objects - they
would not come back as what was stored, so the caller converts them explicitly, e.g. ``value.isoformat()``),
``NaN``/``Infinity`` (not JSON) and strings containing NUL (PostgreSQL's ``jsonb`` cannot hold them).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tasker.errors import EncodingError

__all__ = ["check_json", "dumps", "json_size", "safe_text"]

_SCALARS = (str, int, float, bool, type(None))


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def check_json(value: Any, path: str) -> None:
    """Raise :class:`EncodingError` (naming the key path under ``path``) unless ``value`` encodes as JSON."""
    # An explicit stack, not recursion: a deeply nested value is refused by size, never by RecursionError.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise EncodingError(f"{where}: string contains a NUL character", path=where)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise EncodingError(f"{where}: {item!r} is not valid JSON", path=where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise EncodingError(f"{where}: key {key!r} is not a string", path=where)
                if "\x00" in key:
                    raise EncodingError(f"{where}: key {key!r} contains a NUL character", path=where)
                stack.append((child, _key_path(where, key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
        elif not isinstance(item, _SCALARS):
            raise EncodingError(f"{where}: {type(item).__name__} is not JSON-serializable", path=where)


#: One encoder for every call (``json.dumps`` with an option builds a new one each time).
_ENCODER = json.JSONEncoder(allow_nan=False)


def dumps(value: Any) -> str:
    """JSON text of ``value``; the serializer of every database engine (NaN and Infinity refused)."""
    return _ENCODER.encode(value)


def json_size(value: Any) -> int:
    """Bytes of ``value``'s JSON text (UTF-8)."""
    return len(dumps(value).encode())


def safe_text(text: str) -> str:
    """Free text (an error message, a backtrace) made storable: NUL characters are escaped."""
    return text.replace("\x00", "\\x00")
