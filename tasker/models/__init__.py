"""tasker.models."""
