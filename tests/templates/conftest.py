"""Shared fixtures: a valid diamond-shaped template as a dict and as a YAML file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

H = "tests.templates.handlers"

DIAMOND: dict[str, Any] = {
    "name": "order_process",
    "namespace_name": "ecommerce",
    "version": "1.2.0",
    "description": "diamond",
    "default_dependent_system": "order_service",
    "schema": {
        "type": "object",
        "required": ["order_id"],
        "properties": {"order_id": {"type": "integer"}},
    },
    "step_templates": [
        {"name": "validate", "handler_class": f"{H}:ValidateOrder"},
        {
            "name": "reserve",
            "handler_class": f"{H}:ReserveStock",
            "depends_on_step": "validate",
            "dependent_system": "inventory",
        },
        {
            "name": "charge",
            "handler_class": f"{H}.ChargeCard",
            "depends_on_steps": ["validate"],
            "handler_config": {"type": "api", "url": "A", "params": {"cart_id": 1}},
            "default_retry_limit": 5,
            "custom_events": [{"name": "payment.charged", "description": "Card charged"}],
        },
        {
            "name": "send",
            "handler_class": f"{H}:SendConfirmation",
            "depends_on_steps": ["reserve", "charge"],
            "default_retryable": False,
            "skippable": True,
        },
    ],
}


@pytest.fixture
def diamond() -> dict[str, Any]:
    """A fresh, mutable copy of the valid diamond template."""
    return copy.deepcopy(DIAMOND)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Any:
    """Write a mapping (or raw text) to ``tmp_path/<name>`` and return the path."""

    def write(content: Any, name: str = "order.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write
