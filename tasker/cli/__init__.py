"""tasker.cli."""
