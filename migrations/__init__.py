"""Alembic migrations for the tasker schema (installed as ``tasker.migrations``)."""
