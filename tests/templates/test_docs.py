"""The examples in docs/templates.md stay true."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tasker.templates import parse_template

DOC = Path(__file__).resolve().parents[2] / "docs" / "templates.md"


def _block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"no ```{language} block in {DOC}"
    return match.group(1)


def _example() -> dict[str, Any]:
    data = yaml.safe_load(_block("yaml"))
    assert isinstance(data, dict)
    return data


def test_doc_example_parses() -> None:
    template = parse_template(_example(), source=str(DOC), resolve_handlers=False)
    assert template.full_name == "ecommerce.order_process@1.2.0"
    assert template.dependent_system_for(template.step("validate_order")) == "order_service"
    assert template.dependent_system_for(template.step("charge_card")) == "payment_gateway"


def test_doc_mermaid_matches_renderer() -> None:
    template = parse_template(_example(), resolve_handlers=False)
    assert template.graph().to_mermaid() == _block("mermaid")


def test_doc_environment_result() -> None:
    template = parse_template(_example(), environment="test", resolve_handlers=False)
    assert template.step("charge_card").handler_config == {
        "type": "api",
        "url": "http://localhost:8080/charge",
        "params": {"currency": "EUR", "test_mode": True},
    }
