"""tasker.events."""
