"""indexes over the rows their queries look for: claimed steps, finished steps, failed attempts

A step's commit writes every index page its changes touch. Three indexes held every row although their queries
read only some: the claim-lease index (only claimed steps are checked for an expired lease), the ``processed_at``
index (statistics read finished steps) and the transitions' ``(to_state, created_at)`` index (statistics read
failed attempts). Each is now partial: a chain step's commit writes about 8 pages instead of 12, and the indexes
stay as small as what is claimed, finished or failed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STEPS = "tasker_workflow_steps"
_TRANSITIONS = "tasker_workflow_step_transitions"
#: (index, table, columns, PostgreSQL included columns, the rows it keeps)
_INDEXES: tuple[tuple[str, str, list[str], list[str], Any], ...] = (
    (f"ix_{_STEPS}_in_process_lease_expires_at", _STEPS, ["in_process", "lease_expires_at"], [],
     sa.column("in_process").is_(True)),
    (f"ix_{_STEPS}_processed_at", _STEPS, ["processed_at"], ["status", "started_at", "named_step_id"],
     sa.text("processed_at IS NOT NULL")),
    (f"ix_{_TRANSITIONS}_to_state_created_at", _TRANSITIONS, ["to_state", "created_at"], [],
     sa.text("to_state = 'error'")),
)  # fmt: skip


def _rebuild(partial: bool) -> None:
    """Drop the three indexes and create them again, over the rows they keep (``partial``) or over every row."""
    for name, table, columns, include, rows in _INDEXES:
        op.drop_index(name, table_name=table)
        kwargs: dict[str, Any] = {"postgresql_include": include} if include else {}
        if partial:
            kwargs.update(sqlite_where=rows, postgresql_where=rows)
        op.create_index(name, table, columns, **kwargs)


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
