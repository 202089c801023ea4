"""A module that fails on import, to test that the import error reaches the TemplateError message."""

raise RuntimeError("boom while importing broken_handlers")
