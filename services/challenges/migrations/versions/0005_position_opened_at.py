"""when each position was opened (from flat, or reversed): a dashboard shows its age, and its
fees are the commissions of its fills since then

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute("ALTER TABLE positions ADD COLUMN opened_at timestamptz")
    op.execute("UPDATE positions SET opened_at = updated_at WHERE quantity <> 0")


def downgrade() -> None:
    op.execute("ALTER TABLE positions DROP COLUMN opened_at")
