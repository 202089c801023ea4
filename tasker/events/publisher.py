"""The event bus of one app: publishing, subscribing, and the policy applied around every delivery.

Each :class:`EventBus` owns a private :class:`blinker.Namespace` (never blinker's default one) with one signal
per event name, receivers held strongly (``weak=False``) and called in subscription order. A publish runs
the pipeline *build payload -> add timestamp -> mask -> wrap in an* :class:`Event` *-> deliver*,
synchronously in the caller's thread. Publishing an unknown name is a programming error and raises; a
subscriber that raises is logged, reported to ``on_subscriber_error`` and skipped; the others still run
(``KeyboardInterrupt`` and ``SystemExit`` propagate to the engine, which records the interrupted work first).
A synchronous subscriber slower than ``slow_subscriber_seconds`` is logged and reported to ``on_slow_subscriber``.
A subscriber may instead take its events in the background (:class:`BackgroundDelivery`): its own bounded,
ordered queue and thread; when the queue is full the event is dropped for it and reported to ``on_event_dropped``,
so a slow subscriber never holds up a workflow.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import blinker

from tasker.config import DEFAULT_FILTER_PARAMETERS
from tasker.errors import EventError
from tasker.events.catalog import DEFAULT_CUSTOM_DESCRIPTION, EventCatalog, EventSpec, FieldSpec
from tasker.events.loading import build_subscribers, read_custom_events
from tasker.events.masking import Masker

if TYPE_CHECKING:
    from tasker.events.subscriber import BaseSubscriber

logger = logging.getLogger(__name__)

Subscriber = Callable[["Event"], object]
"""A subscriber: any callable taking one :class:`Event`; its return value is ignored."""

SubscriberErrorCallback = Callable[[str, str, BaseException], None]
"""Called with (event name, subscriber name, exception) when a subscriber raises."""

SubscriberCallback = Callable[[str, str], None]
"""Called with (event name, subscriber name): a slow synchronous delivery, or an event dropped for a subscriber."""

#: What a synchronous subscriber may raise without stopping the engine (interruptions propagate).
_SUBSCRIBER_FAILURES = (Exception, asyncio.CancelledError, GeneratorExit)


class Event(Mapping[str, Any]):
    """One published event: an immutable mapping over its (masked) payload, plus its name."""

    __slots__ = ("_data", "_name")

    def __init__(self, name: str, payload: Mapping[str, Any]) -> None:
        self._name = name
        self._data = payload

    @property
    def name(self) -> str:
        """The event name, e.g. ``step.completed``."""
        return self._name

    @property
    def payload(self) -> Mapping[str, Any]:
        """A read-only view of the payload."""
        return MappingProxyType(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when the key is absent."""
        return self._data.get(key, default)

    def safe_get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when the key is absent *or* its value is None."""
        value = self._data.get(key)
        return default if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """A shallow, mutable copy of the payload (e.g. to serialise it)."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"Event({self._name!r}, {dict(self._data)!r})"


# -- timestamps ----------------------------------------------------------------------------------------------

# Formatting a datetime costs about 1 µs per event; the formatted string is cached per millisecond and one
# tuple is swapped atomically, so concurrent publishers never see a half-updated cache.
_ts_cache: tuple[int, str] = (-1, "")


def utc_timestamp() -> str:
    """Now as ISO-8601 UTC with millisecond precision, e.g. ``2024-01-01T12:00:00.123+00:00``."""
    global _ts_cache
    millis = int(time.time() * 1000)
    cached_millis, text = _ts_cache
    if millis != cached_millis:
        seconds, rest = divmod(millis, 1000)
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest * 1000)
        text = moment.isoformat(timespec="milliseconds")
        _ts_cache = (millis, text)
    return text


# -- blinker plumbing ----------------------------------------------------------------------------------------


class _OrderedIdSet(dict[Hashable, None]):
    """An insertion-ordered set of receiver ids, so blinker calls receivers in subscription order."""

    def add(self, item: Hashable) -> None:
        self[item] = None

    def discard(self, item: Hashable) -> None:
        self.pop(item, None)

    # blinker copies the set on every send only to iterate it: a plain (ordered) dict copy is enough and
    # is made in C.
    copy = dict.copy

    def __or__(self, other: Mapping[Hashable, None]) -> _OrderedIdSet:  # type: ignore[override]
        merged = _OrderedIdSet(self)
        merged.update(other)
        return merged


class _OrderedSignal(blinker.NamedSignal):
    # blinker documents set_class as the hook for ordered dispatch; it only uses add/discard/copy/|/iteration.
    set_class = _OrderedIdSet  # type: ignore[assignment]


class _Namespace(blinker.Namespace):
    def signal(self, name: str, doc: str | None = None) -> blinker.NamedSignal:
        if name not in self:
            self[name] = _OrderedSignal(name, doc)
        return self[name]


def _subscriber_key(fn: Callable[..., object]) -> Hashable:
    # Bound methods are re-created on every attribute access: identify them by (function, instance).
    if inspect.ismethod(fn):
        return (id(fn.__func__), id(fn.__self__))
    return id(fn)


def _default_subscriber_name(fn: Callable[..., object]) -> str:
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


class BackgroundDelivery:
    """One subscriber's own bounded, ordered event queue and the thread that drains it."""

    def __init__(self, bus: EventBus, name: str, maxsize: int) -> None:
        self.bus = bus
        self.name = name
        self._queue: queue.Queue[tuple[Subscriber, Event] | None] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def put(self, fn: Subscriber, event: Event) -> None:
        """Queue ``event`` for ``fn`` without waiting; a full queue drops it (logged once, counted)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"tasker-events-{self.name}", daemon=True)
                    self._thread.start()
        try:
            self._queue.put_nowait((fn, event))
        except queue.Full:
            self.dropped += 1
            level = logging.WARNING if self.dropped == 1 else logging.DEBUG
            logger.log(level, "Event subscriber %s is behind: %s dropped (queue full)", self.name, event.name)
            self.bus._event_dropped(event.name, self.name)

    def _run(self) -> None:
        failed = self.bus._subscriber_failed
        while (item := self._queue.get()) is not None:
            fn, event = item
            try:
                fn(event)
            except BaseException as exc:  # nothing a subscriber raises may end its delivery thread
                failed(event.name, self.name, exc)

    def close(self, timeout: float) -> None:
        """Deliver what is queued (for up to ``timeout`` seconds), then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            logger.warning("Event subscriber %s: %d queued event(s) not delivered", self.name, self._queue.qsize())
            return
        thread.join(max(deadline - time.monotonic(), 0.0))


class _Subscription:
    """A subscriber's connection to one signal: the isolating receiver blinker calls, and what it wraps."""

    __slots__ = ("fn", "name", "receiver")

    def __init__(self, bus: EventBus, fn: Subscriber, name: str, delivery: BackgroundDelivery | None) -> None:
        self.fn = fn
        self.name = name
        failed = bus._subscriber_failed
        slow = bus._subscriber_slow
        threshold = bus.slow_subscriber_seconds
        clock = time.perf_counter

        # Closures, not bound methods: blinker calls them for every event, and a plain function is the
        # cheapest callable to check and to call.
        def receiver(sender: object, event: Event) -> None:
            started = clock()
            try:
                fn(event)
            except _SUBSCRIBER_FAILURES as exc:
                failed(event._name, name, exc)
            elapsed = clock() - started
            if elapsed > threshold:
                slow(event._name, name, elapsed)

        def enqueue(sender: object, event: Event) -> None:
            put(fn, event)

        if delivery is None:
            self.receiver = receiver
        else:
            put = delivery.put
            self.receiver = enqueue


# -- the bus -------------------------------------------------------------------------------------------------


class EventBus:
    """Publishes events to subscribers; one per app, sharing nothing with other instances."""

    def __init__(
        self,
        catalog: EventCatalog | None = None,
        masker: Masker | None = None,
        on_subscriber_error: SubscriberErrorCallback | None = None,
        *,
        slow_subscriber_seconds: float = 1.0,
        on_slow_subscriber: SubscriberCallback | None = None,
        on_event_dropped: SubscriberCallback | None = None,
    ) -> None:
        """Create a bus; ``masker`` defaults to the default sensitive-key filter (``Masker(())``: none)."""
        self.catalog = catalog if catalog is not None else EventCatalog()
        self.masker = masker if masker is not None else Masker(DEFAULT_FILTER_PARAMETERS)
        self.on_subscriber_error = on_subscriber_error
        self.slow_subscriber_seconds = slow_subscriber_seconds
        self.on_slow_subscriber = on_slow_subscriber
        self.on_event_dropped = on_event_dropped
        self._deliveries: list[BackgroundDelivery] = []
        self._mask = self.masker.mask if self.masker.enabled else None
        self._signals = _Namespace()
        self._subscriptions: dict[tuple[str, Hashable], _Subscription] = {}
        self._lock = threading.RLock()

    # -- publishing ------------------------------------------------------------------------------------------

    def publish(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Deliver ``name`` with a copy of ``payload`` (plus ``timestamp``, masked) to every subscriber."""
        signal = self._signals.get(name)
        if signal is None:
            signal = self._signal(name)
        if not signal.receivers:
            return
        self._send(signal, name, dict(payload) if payload is not None else {})

    def emit(self, name: str, build: Callable[[], dict[str, Any]]) -> None:
        """Like :meth:`publish`, but call ``build()`` for the payload only when someone listens.

        The dict ``build`` returns belongs to the bus afterwards (``timestamp`` is added to it in place).
        """
        signal = self._signals.get(name)
        if signal is None:
            signal = self._signal(name)
        if not signal.receivers:
            return
        self._send(signal, name, build())

    def _send(self, signal: blinker.NamedSignal, name: str, data: dict[str, Any]) -> None:
        """Mask ``data`` (the bus's own), add the bus's timestamp when it has none, deliver it."""
        stamp = data.get("timestamp") is None
        mask = self._mask
        if mask is not None:
            masked = mask(data)  # ``data`` itself when nothing needed masking, else a masked copy
            data = masked if isinstance(masked, dict) else dict(masked)
        if stamp:  # the bus's own timestamp: nothing to mask in it
            data["timestamp"] = utc_timestamp()
        signal.send(self, event=Event(name, data))

    def _subscriber_slow(self, event_name: str, subscriber_name: str, seconds: float) -> None:
        logger.warning("Event subscriber %s took %.2fs handling %s", subscriber_name, seconds, event_name)
        if self.on_slow_subscriber is not None:
            self.on_slow_subscriber(event_name, subscriber_name)

    def _event_dropped(self, event_name: str, subscriber_name: str) -> None:
        if self.on_event_dropped is not None:
            self.on_event_dropped(event_name, subscriber_name)

    def _subscriber_failed(self, event_name: str, subscriber_name: str, exc: BaseException) -> None:
        logger.error("Event subscriber %s failed handling %s", subscriber_name, event_name, exc_info=exc)
        callback = self.on_subscriber_error
        if callback is not None:
            try:
                callback(event_name, subscriber_name, exc)
            except Exception:
                logger.exception("on_subscriber_error callback failed for event %s", event_name)

    def has_subscribers(self, name: str) -> bool:
        """Whether anything listens to ``name`` (an unknown name raises :class:`EventError`)."""
        signal = self._signals.get(name)
        if signal is None:
            signal = self._signal(name)
        return bool(signal.receivers)

    def _signal(self, name: str) -> blinker.NamedSignal:
        with self._lock:
            signal = self._signals.get(name)
            if signal is None:
                if name not in self.catalog:
                    raise EventError(f"Unknown event '{name}': not a system event and not registered as a custom event")
                signal = self._signals.signal(name)
            return signal

    # -- subscribing -----------------------------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        fn: Subscriber,
        *,
        subscriber_name: str | None = None,
        delivery: BackgroundDelivery | None = None,
    ) -> None:
        """Call ``fn(event)`` for every ``name`` event; subscribing the same callable again does nothing.

        ``subscriber_name`` names it in logs and in ``on_subscriber_error`` (default: its qualified name).
        With a ``delivery`` (see :meth:`background_delivery`) ``fn`` runs on that delivery's thread instead.
        """
        if not callable(fn):
            raise EventError(f"Subscriber for '{name}' is not callable: {fn!r}")
        if inspect.iscoroutinefunction(fn):
            raise EventError(
                f"Subscriber {_default_subscriber_name(fn)} is async; subscribers are called synchronously"
            )
        key = (name, _subscriber_key(fn))
        with self._lock:
            signal = self._signal(name)
            if key in self._subscriptions:
                return
            subscription = _Subscription(self, fn, subscriber_name or _default_subscriber_name(fn), delivery)
            self._subscriptions[key] = subscription
            signal.connect(subscription.receiver, weak=False)

    def background_delivery(self, subscriber_name: str, maxsize: int = 1000) -> BackgroundDelivery:
        """A new queue of at most ``maxsize`` events with its own thread, closed by :meth:`close`."""
        delivery = BackgroundDelivery(self, subscriber_name, maxsize)
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what background subscribers have queued (up to ``timeout`` seconds in all) and stop them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.close(max(deadline - time.monotonic(), 0.0))

    def unsubscribe(self, name: str, fn: Subscriber) -> None:
        """Stop calling ``fn`` for ``name``; a callable that is not subscribed is ignored."""
        with self._lock:
            signal = self._signal(name)
            subscription = self._subscriptions.pop((name, _subscriber_key(fn)), None)
            if subscription is not None:
                signal.disconnect(subscription.receiver)

    def subscribers(self, name: str) -> list[str]:
        """Names of the subscribers of ``name``, in delivery order."""
        self._signal(name)
        with self._lock:
            return [s.name for (event, _), s in self._subscriptions.items() if event == name]

    def subscribe_subscriber(self, subscriber: BaseSubscriber) -> BaseSubscriber:
        """Subscribe every event of ``subscriber`` to its handler method; returns the subscriber."""
        subscriber.subscribe(self)
        return subscriber

    # -- custom events and YAML ------------------------------------------------------------------------------

    def register_custom_event(
        self,
        name: str,
        description: str = DEFAULT_CUSTOM_DESCRIPTION,
        fired_by: Iterable[str] = (),
        fields: Iterable[FieldSpec] = (),
    ) -> EventSpec:
        """Register a custom event (``namespace.event``) on this bus's catalog; idempotent."""
        return self.catalog.register_custom(name, description, fired_by, fields)

    def load_custom_events(self, path: str | os.PathLike[str]) -> list[EventSpec]:
        """Register the custom events declared in a YAML file or a directory of ``*.yml``/``*.yaml`` files."""
        specs = read_custom_events(path)
        return [self.register_custom_event(spec.name, spec.description, spec.fired_by, spec.fields) for spec in specs]

    def load_subscriptions(
        self, path: str | os.PathLike[str], context: Mapping[str, type[BaseSubscriber]] | None = None
    ) -> list[BaseSubscriber]:
        """Instantiate and subscribe the subscribers declared in YAML (``subscriptions:``); returns them.

        ``context`` maps class names used in the files to classes (for classes not importable by path).
        """
        subscribers = build_subscribers(path, self.catalog, context)
        for subscriber in subscribers:
            subscriber.subscribe(self)
        return subscribers
