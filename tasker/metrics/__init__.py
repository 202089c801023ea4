"""tasker.metrics."""
