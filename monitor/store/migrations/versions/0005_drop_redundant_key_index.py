"""drop the index on mention_keys.key: the unique (key, mention_id) index already serves
every lookup by key, and the duplicate cost about 0.3 GB per million mentions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mention_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_mention_keys_key")


def downgrade() -> None:
    with op.batch_alter_table("mention_keys", schema=None) as batch_op:
        batch_op.create_index("ix_mention_keys_key", ["key"], unique=False)
