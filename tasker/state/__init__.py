"""tasker.state."""
