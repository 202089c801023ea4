"""The app's masker: one redaction function for every sink that carries user data out of the engine.

Event payloads, span attributes, log records, transition metadata, CLI output and HTTP responses all go
through :meth:`Masker.redact` (any value) or :meth:`Masker.scrub` (one string); the database keeps what the
user wrote. Two mechanisms:

* **Keys.** A key is sensitive when, lower-cased and with ``-`` read as ``_``, it contains any configured filter
  entry (``EventsConfig.filter_parameters``): ``db_password`` and ``X-Api-Key`` match ``password`` and
  ``api_key``. Its value is replaced by the mask whatever it holds.
* **Free text.** Every string value (and the text of log lines and tracebacks) is scrubbed of
  ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key is sensitive, URL credentials
  (``scheme://user:secret@host``), ``Bearer``/``Basic`` credentials, card numbers (13-19 digits, spaces or
  dashes allowed, Luhn-valid; integers too) and the configured extra patterns (``EventsConfig.filter_patterns``:
  regular expressions; a named group ``value`` masks only that part, else the whole match).

Masking recurses into nested dicts, lists and tuples (subclasses included; other mapping types are left
alone), copies only what it changes, and remembers its decision for every key it has seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from tasker.errors import ConfigurationError

if TYPE_CHECKING:
    from tasker.config import EventsConfig

#: Mask used when none is configured (same default as ``EventsConfig.filter_mask``).
DEFAULT_MASK: Final = "[FILTERED]"

# Keys seen are remembered; beyond this many distinct keys a memo is reset so that payloads with unbounded
# key sets (user results keyed by ids) cannot grow it forever.
_MEMO_LIMIT: Final = 4096

_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)(?P<value>[^/\s@]+)(?=@)")
_AUTH_SCHEME = re.compile(r"(?P<head>\b(?:[Bb]earer|[Bb]asic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{4,})")
# 13-19 digits, single spaces or dashes between them, not inside a longer number or word.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w])")
_CARD_DIGITS_MIN = 13
# Integers with 13 to 19 digits.
_CARD_INT_MIN, _CARD_INT_MAX = 10**12, 10**19
# An ISO-8601 timestamp, as payloads carry several (each one unique): holds no secret, so no pattern needs to run.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:?\d\d)?")


def _normalise(key: str) -> str:
    return key.lower().replace("-", "_")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (as card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _alternatives(patterns: tuple[str, ...]) -> str:
    # Keys read "-" as "_": an entry "api_key" also matches "X-Api-Key" in text.
    return "|".join(re.escape(p).replace("_", "[_-]") for p in sorted(patterns, key=len, reverse=True))


def _keys_pattern(patterns: tuple[str, ...], flags: int = re.IGNORECASE) -> re.Pattern[str] | None:
    """Finds any sensitive key in text: the cheap test before the pairs pattern runs.

    Without ``re.IGNORECASE`` it is for lower-cased ASCII text, where it finds exactly what the case-insensitive
    pattern finds in the original, several times faster.
    """
    return re.compile(_alternatives(patterns), flags) if patterns else None


def _pairs_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    alternatives = _alternatives(patterns)
    return re.compile(
        r"(?P<head>[\w.-]*(?:" + alternatives + r")[\w.-]*(?P<quote>[\"']?)\s*[:=]\s*)"
        r"(?P<value>(?:(?:bearer|basic)\s+)?(?:\"[^\"]*\"|'[^']*'|[^\s,;&)}\]]+))",
        re.IGNORECASE,
    )


def _compile_extra(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigurationError(f"invalid filter pattern {pattern!r}: {exc}") from exc
    return tuple(compiled)


class _ContainerTypes(dict[type, bool]):
    """type -> whether masking must look inside its values; filled on first sight of each type."""

    def __missing__(self, cls: type) -> bool:
        hit = issubclass(cls, (dict, list, tuple))
        self[cls] = hit
        return hit


class Masker:
    """Masks sensitive keys and secrets in free text, recursively, without mutating its input.

    ``masker.redact(value)`` is the one call for any value (mapping, list, string, number);
    ``masker.mask(mapping)`` is the same for a mapping, ``masker.scrub(text)`` for one string.
    """

    __slots__ = (
        "__weakref__", "_clean", "_extra", "_is_container", "_keys", "_keys_lower", "_pairs", "_patterns",
        "_scrubbed", "_sensitive", "mask_value",
    )  # fmt: skip

    def __init__(
        self, filter_parameters: Iterable[str], mask: str = DEFAULT_MASK, patterns: Iterable[str] = ()
    ) -> None:
        self._patterns: tuple[str, ...] = tuple(
            dict.fromkeys(_normalise(p) for p in filter_parameters if p and p.strip())
        )
        self._extra = _compile_extra(patterns)
        self._keys = _keys_pattern(self._patterns)
        self._keys_lower = _keys_pattern(self._patterns, 0)
        self._pairs = _pairs_pattern(self._patterns)
        # Texts already scrubbed (names, statuses, messages repeat): text -> result.
        self._scrubbed: dict[str, str] = {}
        self.mask_value = mask
        # Decisions already made, per key: checking a payload's keys is then one C-level subset test.
        self._clean: set[Any] = set()
        self._sensitive: set[Any] = set()
        self._is_container = _ContainerTypes().__getitem__

    @classmethod
    def from_config(cls, config: EventsConfig) -> Masker:
        """The masker an ``events`` config section describes (keys, mask, extra patterns)."""
        return cls(config.filter_parameters, config.filter_mask, config.filter_patterns)

    @property
    def filter_parameters(self) -> tuple[str, ...]:
        """The normalised filter entries."""
        return self._patterns

    @property
    def enabled(self) -> bool:
        """False when there is nothing to filter (masking is then the identity)."""
        return bool(self._patterns or self._extra)

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

    # -- free text -------------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with secrets (sensitive pairs, credentials, card numbers, extra patterns) masked."""
        if not (self._patterns or self._extra):
            return text
        done = self._scrubbed.get(text)
        if done is not None:
            return done
        if not self._extra and _TIMESTAMP.fullmatch(text):  # not remembered: a timestamp rarely comes back
            return text
        result = self._scrub(text)
        if len(text) <= 256:
            if len(self._scrubbed) >= _MEMO_LIMIT:
                self._scrubbed.clear()
            self._scrubbed[text] = result
        return result

    def _scrub(self, text: str) -> str:
        # Each pattern runs only where a cheap test says it may match: most texts pass through untouched.
        mask = self.mask_value
        for pattern in self._extra:
            text = pattern.sub(self._replace_group, text)
        if self._keys is not None and self._keys_lower is not None and self._pairs is not None:
            keys = self._keys_lower.search(text.lower()) if text.isascii() else self._keys.search(text)
            if keys is not None:
                text = self._pairs.sub(self._replace_pair, text)
        if "://" in text:
            text = _URL_CREDENTIALS.sub(lambda m: m["head"] + mask, text)
        if "asic" in text or "earer" in text:
            text = _AUTH_SCHEME.sub(lambda m: m["head"] + mask, text)
        if len(text) >= _CARD_DIGITS_MIN:
            text = _CARD.sub(self._replace_card, text)
        return text

    def _replace_group(self, match: re.Match[str]) -> str:
        if "value" in match.re.groupindex and match["value"] is not None:
            start, end = match.span("value")
            whole = match.start()
            return match[0][: start - whole] + self.mask_value + match[0][end - whole :]
        return self.mask_value

    def _replace_pair(self, match: re.Match[str]) -> str:
        value = match["value"]
        mask = self.mask_value
        if value.strip("\"'").startswith(mask) or match.string.startswith(mask, match.start("value")):
            return match[0]
        if value[:1] in ("'", '"'):
            return f"{match['head']}{value[0]}{mask}{value[0]}"
        return match["head"] + mask

    def _replace_card(self, match: re.Match[str]) -> str:
        digits = match[0].replace(" ", "").replace("-", "")
        return self.mask_value if luhn_valid(digits) else match[0]

    def _scalar(self, value: Any) -> Any:
        """A string scrubbed, a card-number integer masked, anything else as it is."""
        if isinstance(value, str):
            scrubbed = self.scrub(value)
            return value if scrubbed == value else scrubbed
        if type(value) is int and _CARD_INT_MIN <= abs(value) < _CARD_INT_MAX:
            return self.mask_value if luhn_valid(str(abs(value))) else value
        return value

    # -- structures ------------------------------------------------------------------------------------

    def mask(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """``payload`` with sensitive values masked; the same object when nothing needed masking."""
        if not self.enabled:
            return payload
        return self._mask_mapping(payload)

    def redact(self, value: Any) -> Any:
        """Any value (mapping, list, tuple, string, number) with every secret masked; unchanged objects kept."""
        if not self.enabled:
            return value
        return self._mask_any(value)

    def _mask_mapping(self, data: Mapping[Any, Any]) -> Mapping[Any, Any]:
        out: dict[Any, Any] | None = None
        mask = self.mask_value
        check_keys = not data.keys() <= self._clean
        is_container = self._is_container
        scrubbed = self._scrubbed
        for key, value in data.items():
            kind = type(value)
            if check_keys and self.is_sensitive(key):
                if value is mask or (kind is str and value == mask):
                    continue  # already masked
                new: Any = mask
            elif kind is str:  # the common case, inline: a memo hit is one dict lookup
                new = scrubbed.get(value)
                if new is None:
                    new = self.scrub(value)
                if new == value:
                    continue
            elif kind is int:
                if not _CARD_INT_MIN <= abs(value) < _CARD_INT_MAX:
                    continue
                new = self._scalar(value)
            elif is_container(kind):
                new = self._mask_mapping(value) if kind is dict else self._mask_any(value)
            else:
                new = self._scalar(value)
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
            for index, item in enumerate(value):
                new = self._mask_any(item)
                if new is not item:
                    if changed is None:
                        changed = list(value)
                    changed[index] = new
            if changed is None:
                return value
            return tuple(changed) if isinstance(value, tuple) else changed
        return self._scalar(value)
