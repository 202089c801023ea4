"""tasker.db."""
