"""tasker.orchestration."""
