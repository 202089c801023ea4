"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 06:05:36.919332
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tasker.models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "tasker_annotation_types",
        sa.Column("annotation_type_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("annotation_type_id", name=op.f("pk_tasker_annotation_types")),
        sa.UniqueConstraint("name", name=op.f("uq_tasker_annotation_types_name")),
    )
    op.create_table(
        "tasker_dependent_systems",
        sa.Column("dependent_system_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dependent_system_id", name=op.f("pk_tasker_dependent_systems")),
        sa.UniqueConstraint("name", name=op.f("uq_tasker_dependent_systems_name")),
    )
    op.create_table(
        "tasker_task_namespaces",
        sa.Column("task_namespace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_namespace_id", name=op.f("pk_tasker_task_namespaces")),
        sa.UniqueConstraint("name", name=op.f("uq_tasker_task_namespaces_name")),
    )
    op.create_table(
        "tasker_named_steps",
        sa.Column("named_step_id", sa.Integer(), nullable=False),
        sa.Column("dependent_system_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dependent_system_id"],
            ["tasker_dependent_systems.dependent_system_id"],
            name=op.f("fk_tasker_named_steps_dependent_system_id_tasker_dependent_systems"),
        ),
        sa.PrimaryKeyConstraint("named_step_id", name=op.f("pk_tasker_named_steps")),
        sa.UniqueConstraint(
            "dependent_system_id", "name", name=op.f("uq_tasker_named_steps_dependent_system_id_name")
        ),
    )
    op.create_table(
        "tasker_named_tasks",
        sa.Column("named_task_id", sa.Integer(), nullable=False),
        sa.Column("task_namespace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column(
            "configuration",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_namespace_id"],
            ["tasker_task_namespaces.task_namespace_id"],
            name=op.f("fk_tasker_named_tasks_task_namespace_id_tasker_task_namespaces"),
        ),
        sa.PrimaryKeyConstraint("named_task_id", name=op.f("pk_tasker_named_tasks")),
        sa.UniqueConstraint(
            "task_namespace_id",
            "name",
            "version",
            name=op.f("uq_tasker_named_tasks_task_namespace_id_name_version"),
        ),
    )
    op.create_table(
        "tasker_named_tasks_named_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("named_task_id", sa.Integer(), nullable=False),
        sa.Column("named_step_id", sa.Integer(), nullable=False),
        sa.Column("skippable", sa.Boolean(), nullable=False),
        sa.Column("default_retryable", sa.Boolean(), nullable=False),
        sa.Column("default_retry_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["named_step_id"],
            ["tasker_named_steps.named_step_id"],
            name=op.f("fk_tasker_named_tasks_named_steps_named_step_id_tasker_named_steps"),
        ),
        sa.ForeignKeyConstraint(
            ["named_task_id"],
            ["tasker_named_tasks.named_task_id"],
            name=op.f("fk_tasker_named_tasks_named_steps_named_task_id_tasker_named_tasks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasker_named_tasks_named_steps")),
        sa.UniqueConstraint(
            "named_task_id",
            "named_step_id",
            name=op.f("uq_tasker_named_tasks_named_steps_named_task_id_named_step_id"),
        ),
    )
    op.create_table(
        "tasker_tasks",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("named_task_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("requested_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("initiator", sa.String(length=128), nullable=False),
        sa.Column("source_system", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column(
            "bypass_steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("identity_hash", sa.String(length=128), nullable=False),
        sa.Column(
            "trace_context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("run_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claim_expires_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["named_task_id"],
            ["tasker_named_tasks.named_task_id"],
            name=op.f("fk_tasker_tasks_named_task_id_tasker_named_tasks"),
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_tasker_tasks")),
        sa.UniqueConstraint("identity_hash", name=op.f("uq_tasker_tasks_identity_hash")),
    )
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasker_tasks_named_task_id"), ["named_task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasker_tasks_status_run_at"), ["status", "run_at"], unique=False)

    op.create_table(
        "tasker_task_annotations",
        sa.Column("task_annotation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("annotation_type_id", sa.Integer(), nullable=False),
        sa.Column(
            "annotation",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotation_type_id"],
            ["tasker_annotation_types.annotation_type_id"],
            name=op.f("fk_tasker_task_annotations_annotation_type_id_tasker_annotation_types"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasker_tasks.task_id"],
            name=op.f("fk_tasker_task_annotations_task_id_tasker_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_annotation_id", name=op.f("pk_tasker_task_annotations")),
    )
    with op.batch_alter_table("tasker_task_annotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasker_task_annotations_task_id"), ["task_id"], unique=False)

    op.create_table(
        "tasker_task_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sort_key", sa.Integer(), nullable=False),
        sa.Column("most_recent", sa.Boolean(), nullable=False),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_state IS NULL OR from_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')",
            name=op.f("ck_tasker_task_transitions_from_state"),
        ),
        sa.CheckConstraint(
            "to_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')",
            name=op.f("ck_tasker_task_transitions_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasker_tasks.task_id"],
            name=op.f("fk_tasker_task_transitions_task_id_tasker_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasker_task_transitions")),
        sa.UniqueConstraint("task_id", "sort_key", name=op.f("uq_tasker_task_transitions_task_id_sort_key")),
    )
    with op.batch_alter_table("tasker_task_transitions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasker_task_transitions_most_recent",
            ["task_id"],
            unique=True,
            sqlite_where=sa.text("most_recent"),
            postgresql_where=sa.text("most_recent"),
        )

    op.create_table(
        "tasker_workflow_steps",
        sa.Column("workflow_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("named_step_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("retry_limit", sa.Integer(), nullable=False),
        sa.Column("in_process", sa.Boolean(), nullable=False),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.Column("processed_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempted_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("backoff_request_seconds", sa.Double(), nullable=True),
        sa.Column("next_retry_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", tasker.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column(
            "inputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "results",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("skippable", sa.Boolean(), nullable=False),
        sa.Column("unsatisfied_parents", sa.Integer(), nullable=False),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["named_step_id"],
            ["tasker_named_steps.named_step_id"],
            name=op.f("fk_tasker_workflow_steps_named_step_id_tasker_named_steps"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasker_tasks.task_id"],
            name=op.f("fk_tasker_workflow_steps_task_id_tasker_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_step_id", name=op.f("pk_tasker_workflow_steps")),
        sa.UniqueConstraint("task_id", "name", name=op.f("uq_tasker_workflow_steps_task_id_name")),
    )
    with op.batch_alter_table("tasker_workflow_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_steps_in_process_lease_expires_at"),
            ["in_process", "lease_expires_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_steps_named_step_id"), ["named_step_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_steps_task_id_unsatisfied_parents_status"),
            ["task_id", "unsatisfied_parents", "status"],
            unique=False,
        )

    op.create_table(
        "tasker_workflow_step_edges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("to_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_step_id"],
            ["tasker_workflow_steps.workflow_step_id"],
            name=op.f("fk_tasker_workflow_step_edges_from_step_id_tasker_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_step_id"],
            ["tasker_workflow_steps.workflow_step_id"],
            name=op.f("fk_tasker_workflow_step_edges_to_step_id_tasker_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasker_workflow_step_edges")),
        sa.UniqueConstraint(
            "from_step_id", "to_step_id", name=op.f("uq_tasker_workflow_step_edges_from_step_id_to_step_id")
        ),
    )
    with op.batch_alter_table("tasker_workflow_step_edges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasker_workflow_step_edges_to_step_id"), ["to_step_id"], unique=False
        )

    op.create_table(
        "tasker_workflow_step_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workflow_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sort_key", sa.Integer(), nullable=False),
        sa.Column("most_recent", sa.Boolean(), nullable=False),
        sa.Column("created_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tasker.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_state IS NULL OR from_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')",
            name=op.f("ck_tasker_workflow_step_transitions_from_state"),
        ),
        sa.CheckConstraint(
            "to_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')",
            name=op.f("ck_tasker_workflow_step_transitions_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_step_id"],
            ["tasker_workflow_steps.workflow_step_id"],
            name=op.f("fk_tasker_workflow_step_transitions_workflow_step_id_tasker_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasker_workflow_step_transitions")),
        sa.UniqueConstraint(
            "workflow_step_id",
            "sort_key",
            name=op.f("uq_tasker_workflow_step_transitions_workflow_step_id_sort_key"),
        ),
    )
    with op.batch_alter_table("tasker_workflow_step_transitions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasker_workflow_step_transitions_most_recent",
            ["workflow_step_id"],
            unique=True,
            sqlite_where=sa.text("most_recent"),
            postgresql_where=sa.text("most_recent"),
        )


def downgrade() -> None:

    with op.batch_alter_table("tasker_workflow_step_transitions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasker_workflow_step_transitions_most_recent",
            sqlite_where=sa.text("most_recent"),
            postgresql_where=sa.text("most_recent"),
        )

    op.drop_table("tasker_workflow_step_transitions")
    with op.batch_alter_table("tasker_workflow_step_edges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_step_edges_to_step_id"))

    op.drop_table("tasker_workflow_step_edges")
    with op.batch_alter_table("tasker_workflow_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_steps_task_id_unsatisfied_parents_status"))
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_steps_named_step_id"))
        batch_op.drop_index(batch_op.f("ix_tasker_workflow_steps_in_process_lease_expires_at"))

    op.drop_table("tasker_workflow_steps")
    with op.batch_alter_table("tasker_task_transitions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasker_task_transitions_most_recent",
            sqlite_where=sa.text("most_recent"),
            postgresql_where=sa.text("most_recent"),
        )

    op.drop_table("tasker_task_transitions")
    with op.batch_alter_table("tasker_task_annotations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_task_annotations_task_id"))

    op.drop_table("tasker_task_annotations")
    with op.batch_alter_table("tasker_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_status_run_at"))
        batch_op.drop_index(batch_op.f("ix_tasker_tasks_named_task_id"))

    op.drop_table("tasker_tasks")
    op.drop_table("tasker_named_tasks_named_steps")
    op.drop_table("tasker_named_tasks")
    op.drop_table("tasker_named_steps")
    op.drop_table("tasker_task_namespaces")
    op.drop_table("tasker_dependent_systems")
    op.drop_table("tasker_annotation_types")
