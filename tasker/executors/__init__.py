"""tasker.executors."""
