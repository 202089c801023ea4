"""tasker: a workflow engine with observability built in."""
