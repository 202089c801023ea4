"""indexes for listing tasks newest first by status, template or creation time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_named_task_id"))
        batch_op.create_index(batch_op.f("ix_tasker_tasks_named_task_id_task_id"), ["named_task_id", "task_id"])
        batch_op.create_index(batch_op.f("ix_tasker_tasks_status_task_id"), ["status", "task_id"])
        batch_op.create_index(batch_op.f("ix_tasker_tasks_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_created_at"))
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_status_task_id"))
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_named_task_id_task_id"))
        batch_op.create_index(batch_op.f("ix_tasker_tasks_named_task_id"), ["named_task_id"])
