"""``tasker generate events``: example custom-event definitions in YAML and a subscriber that handles them.

The YAML uses the ``events: {namespace: {event: {description, fired_by, payload_schema}}}`` shape that
``app.events.load_custom_events`` reads (reference §6.7, §9.3); the subscriber and its test come from the
subscriber generator, the test loading the YAML before publishing.
"""

from __future__ import annotations

import os

from tasker.events import EventCatalog, EventSpec, FieldSpec

from .core import GeneratedFile, Generation, absolute, display, render
from .subscriber import subscriber_files

#: File name of the generated definitions.
EVENTS_FILE_NAME = "custom_events.yaml"


def _spec(name: str, description: str, fired_by: tuple[str, ...], *fields: FieldSpec) -> EventSpec:
    return EventSpec(name, "custom", description, fired_by, fields)


#: The three example events (reference §9.3).
EXAMPLE_EVENTS: tuple[EventSpec, ...] = (
    _spec(
        "order.processed",
        "An order was validated and processed and is ready to ship.",
        ("ProcessOrderHandler",),
        FieldSpec("order_id", "integer", True, "Id of the order."),
        FieldSpec("customer_id", "integer", True, "Id of the customer who placed it."),
        FieldSpec("total_amount", "number", True, "Order total, in the order's currency."),
        FieldSpec("item_count", "integer", False, "Number of items in the order."),
    ),
    _spec(
        "payment.completed",
        "A payment was captured for an order.",
        ("ChargePaymentHandler",),
        FieldSpec("payment_id", "string", True, "Id of the payment at the payment provider."),
        FieldSpec("order_id", "integer", True, "Id of the order paid for."),
        FieldSpec("amount", "number", True, "Amount captured."),
        FieldSpec("currency", "string", True, "ISO 4217 currency code."),
        FieldSpec("payment_method", "string", False, "card, bank_transfer, ..."),
    ),
    _spec(
        "notification.sent",
        "A notification was sent to a customer.",
        ("NotifyCustomerHandler",),
        FieldSpec("notification_id", "string", True, "Id of the notification."),
        FieldSpec("recipient", "string", True, "Where it was sent (an address or a phone number)."),
        FieldSpec("channel", "string", True, "email, sms or push."),
        FieldSpec("template", "string", False, "Name of the message template used."),
    ),
)


def custom_events_files(
    *,
    directory: str | os.PathLike[str] = "config/events",
    subscribers_directory: str | os.PathLike[str] = "subscribers",
    tests_directory: str | os.PathLike[str] = "tests/subscribers",
) -> Generation:
    """``<directory>/custom_events.yaml``, ``CustomEventsSubscriber`` handling its events, and a test."""
    events_file = absolute(directory) / EVENTS_FILE_NAME
    namespaces: dict[str, list[tuple[str, EventSpec]]] = {}
    for spec in EXAMPLE_EVENTS:
        namespace, event = spec.name.split(".", 1)
        namespaces.setdefault(namespace, []).append((event, spec))
    yaml_text = render("custom_events.yaml.j2", namespaces=namespaces, path=display(events_file))

    catalog = EventCatalog()
    for spec in EXAMPLE_EVENTS:
        catalog.register_custom(spec.name, spec.description, spec.fired_by, spec.fields)
    subscriber = subscriber_files(
        "custom_events",
        [spec.name for spec in EXAMPLE_EVENTS],
        directory=subscribers_directory,
        tests_directory=tests_directory,
        catalog=catalog,
        events_file=events_file,
    )
    notes = [
        f"load the events:  app.events.load_custom_events({display(events_file)!r})",
        f"list them:        tasker events list --events-file {display(events_file)}",
        "publish one:      step handlers call self.publish_event('order.processed', {...})",
        *subscriber.notes,
    ]
    return Generation(files=[GeneratedFile(events_file, yaml_text), *subscriber.files], notes=notes)
