"""tasker.telemetry."""
