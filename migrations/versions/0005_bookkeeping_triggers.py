"""the database keeps the transition logs' most_recent flags and the steps' readiness counters (triggers)

A transition writes its entity's status and inserts one log row; these triggers do the rest in the same
statement, whichever code path writes:

- inserting a ``most_recent`` log row first clears the flag on the entity's previous rows (the partial unique
  index still guarantees one ``most_recent`` row per entity);
- a step that reaches ``complete`` or ``resolved_manually`` (both final) takes one unsatisfied parent off each
  of its children, so readiness checks ``unsatisfied_parents = 0``.

A later migration that recreates one of these tables (SQLite's batch "move and copy") must create its
triggers again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 03:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (trigger name, log table, entity column) of each transition log.
_LOGS = (
    ("tasker_task_log_most_recent", "tasker_task_transitions", "task_id"),
    ("tasker_step_log_most_recent", "tasker_workflow_step_transitions", "workflow_step_id"),
)
_COMPLETED = "NEW.status IN ('complete', 'resolved_manually') AND OLD.status NOT IN ('complete', 'resolved_manually')"
_DECREMENT = (
    "UPDATE tasker_workflow_steps SET unsatisfied_parents = unsatisfied_parents - 1, updated_at = NEW.updated_at"
    " WHERE workflow_step_id IN"
    " (SELECT to_step_id FROM tasker_workflow_step_edges WHERE from_step_id = NEW.workflow_step_id)"
)
_STEP_COMPLETED = "tasker_step_completed"


def _flip(log: str, column: str) -> str:
    return f"UPDATE {log} SET most_recent = false, updated_at = NEW.updated_at WHERE {column} = NEW.{column} AND most_recent"


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name, log, column in _LOGS:
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {_flip(log, column)}; "
                "RETURN NEW; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {log} FOR EACH ROW WHEN (NEW.most_recent) "
                f"EXECUTE FUNCTION {name}()"
            )
        op.execute(
            f"CREATE FUNCTION {_STEP_COMPLETED}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {_DECREMENT}; "
            "RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {_STEP_COMPLETED} AFTER UPDATE OF status ON tasker_workflow_steps FOR EACH ROW "
            f"WHEN ({_COMPLETED}) EXECUTE FUNCTION {_STEP_COMPLETED}()"
        )
        return
    for name, log, column in _LOGS:
        op.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {log} FOR EACH ROW WHEN NEW.most_recent "
            f"BEGIN {_flip(log, column)}; END"
        )
    op.execute(
        f"CREATE TRIGGER {_STEP_COMPLETED} AFTER UPDATE OF status ON tasker_workflow_steps FOR EACH ROW "
        f"WHEN {_COMPLETED} BEGIN {_DECREMENT}; END"
    )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for name, log in [(name, log) for name, log, _column in _LOGS] + [(_STEP_COMPLETED, "tasker_workflow_steps")]:
        op.execute(f"DROP TRIGGER {name} ON {log}" if postgresql else f"DROP TRIGGER {name}")
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
