"""indexes for statistics over a period: tasks and steps finished, failed step attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasker_tasks_completed_at"),
            ["completed_at"],
            postgresql_include=["status", "started_at", "created_at"],
        )
    with op.batch_alter_table("tasker_workflow_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_steps_processed_at"),
            ["processed_at"],
            postgresql_include=["status", "started_at", "named_step_id"],
        )
    with op.batch_alter_table("tasker_workflow_step_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_step_transitions_to_state_created_at"), ["to_state", "created_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tasker_workflow_step_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_step_transitions_to_state_created_at"))
    with op.batch_alter_table("tasker_workflow_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_steps_processed_at"))
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_completed_at"))
