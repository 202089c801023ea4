"""TemplateRegistry: exact keys, explicit replacement, no version fallback, thread safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tasker.errors import TemplateError, TemplateNotFoundError
from tasker.templates import TaskTemplate, TemplateRegistry, parse_template


def _template(diamond: dict[str, Any], **changes: Any) -> TaskTemplate:
    return parse_template({**diamond, **changes})


def test_register_and_get(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    template = _template(diamond)
    assert registry.register(template) is template
    assert registry.get("ecommerce", "order_process", "1.2.0") is template
    assert ("ecommerce", "order_process", "1.2.0") in registry
    assert template in registry
    assert ("ecommerce", "order_process", "9.9.9") not in registry
    assert "order_process" not in registry
    assert len(registry) == 1


def test_duplicate_needs_replace(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    first = registry.register(_template(diamond))
    second = _template(diamond, description="second")
    with pytest.raises(TemplateError) as info:
        registry.register(second)
    message = str(info.value)
    assert "already registered" in message
    assert "namespace 'ecommerce'" in message
    assert "name 'order_process'" in message
    assert "version '1.2.0'" in message
    assert "pass replace=True" in message
    assert registry.get("ecommerce", "order_process", "1.2.0") is first
    registry.register(second, replace=True)
    assert registry.get("ecommerce", "order_process", "1.2.0") is second


def test_missing_names_namespace_name_version(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    with pytest.raises(TemplateNotFoundError) as info:
        registry.get("ecommerce", "order_process", "1.2.0")
    message = str(info.value)
    assert "namespace 'ecommerce'" in message
    assert "name 'order_process'" in message
    assert "version '1.2.0'" in message
    assert isinstance(info.value, TemplateError)


def test_no_version_or_namespace_fallback(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    registry.register(_template(diamond, version="1.2.0"))
    registry.register(_template(diamond, version="1.10.0"))
    for namespace, version in [("ecommerce", "1.3.0"), ("ecommerce", "1.2"), ("default", "1.2.0")]:
        with pytest.raises(TemplateNotFoundError):
            registry.get(namespace, "order_process", version)


def test_listing_is_sorted(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    for version in ["1.10.0", "1.2.0", "0.9.1"]:
        registry.register(_template(diamond, version=version))
    registry.register(_template(diamond, namespace_name="aaa"))
    registry.register(_template(diamond, name="alpha"))
    keys = [t.key for t in registry]
    assert keys == [t.key for t in registry.list()]
    assert keys == [
        ("aaa", "order_process", "1.2.0"),
        ("ecommerce", "alpha", "1.2.0"),
        ("ecommerce", "order_process", "0.9.1"),
        ("ecommerce", "order_process", "1.2.0"),
        ("ecommerce", "order_process", "1.10.0"),
    ]
    assert registry.versions("ecommerce", "order_process") == ["0.9.1", "1.2.0", "1.10.0"]
    assert registry.versions("ecommerce", "nope") == []


def test_registries_are_independent(diamond: dict[str, Any]) -> None:
    one, two = TemplateRegistry(), TemplateRegistry()
    one.register(_template(diamond))
    assert len(two) == 0
    two.register(_template(diamond))  # no clash: separate registries


def test_unregister(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    template = registry.register(_template(diamond))
    assert registry.unregister(*template.key) is template
    assert template not in registry
    with pytest.raises(TemplateNotFoundError):
        registry.unregister(*template.key)


def test_register_rejects_non_templates(diamond: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="expected a TaskTemplate"):
        TemplateRegistry().register(diamond)  # type: ignore[arg-type]


def test_concurrent_registration_allows_one_winner(diamond: dict[str, Any]) -> None:
    registry = TemplateRegistry()
    templates = [_template(diamond, description=str(i)) for i in range(16)]
    barrier = threading.Barrier(len(templates))
    failures: list[Exception] = []

    def register(template: TaskTemplate) -> None:
        barrier.wait()
        try:
            registry.register(template)
        except TemplateError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=register, args=(t,)) for t in templates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(registry) == 1
    assert len(failures) == len(templates) - 1
