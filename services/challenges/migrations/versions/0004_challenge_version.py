"""a version per challenge row, for orders written optimistically

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Bumped by the one statement that updates a challenge (ledger_sql._WRITE); an order that
    # read an older version writes nothing and retries.
    op.execute("ALTER TABLE challenges ADD COLUMN version bigint NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE challenges DROP COLUMN version")
