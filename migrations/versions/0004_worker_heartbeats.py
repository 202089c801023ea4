"""worker heartbeats (tasker_workers): the source of tasker_workers_active

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasker.models.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasker_workers",
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_tasker_workers")),
    )
    with op.batch_alter_table("tasker_workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasker_workers_last_seen_at"), ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasker_workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_workers_last_seen_at"))
    op.drop_table("tasker_workers")
