"""tasker.templates."""
