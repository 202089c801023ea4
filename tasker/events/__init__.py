"""tasker.events: the event catalog, the per-app event bus (on blinker), subscribers and payload masking.

Modules: ``catalog`` (every event name and payload schema; custom events), ``publisher``
(:class:`EventBus`, :class:`Event`), ``subscriber`` (:class:`BaseSubscriber` and its payload helpers),
``masking`` (:class:`Masker`), ``loading`` (YAML custom events and subscriptions).
"""

from tasker.events.catalog import EventCatalog, EventSpec, FieldSpec
from tasker.events.masking import Masker
from tasker.events.publisher import Event, EventBus
from tasker.events.subscriber import BaseSubscriber

__all__ = [
    "BaseSubscriber",
    "Event",
    "EventBus",
    "EventCatalog",
    "EventSpec",
    "FieldSpec",
    "Masker",
]
