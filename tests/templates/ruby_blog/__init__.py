"""Python handlers for two of the vendored Ruby templates (``BlogExamples::Post01``/``Post02``), written for these tests."""
