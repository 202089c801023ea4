"""Workflows written in Ruby Tasker's YAML dialect, run unchanged (see docs/ruby-migration.md).

Their handlers are named by Ruby constants (``Storefront::StepHandlers::CheckBasketHandler``);
:data:`HANDLER_ALIASES` is the ``templates.handler_aliases`` config that maps them to the modules here.
"""

from __future__ import annotations

from pathlib import Path

#: The folder of the example YAML templates.
TEMPLATES = Path(__file__).parent

#: ``templates.handler_aliases`` for these examples: Ruby module prefix -> Python module.
HANDLER_ALIASES: dict[str, str] = {
    "Storefront": "tasker.examples.ruby_style.storefront",
    "Reporting": "tasker.examples.ruby_style.reporting",
    "Accounts": "tasker.examples.ruby_style.accounts",
    "Support": "tasker.examples.ruby_style.refunds",
    "Payments": "tasker.examples.ruby_style.refunds",
    # a Ruby task handler without hooks maps to the base class
    "Reporting::NightlyPipelineHandler": "tasker.handlers:TaskHandler",
}
