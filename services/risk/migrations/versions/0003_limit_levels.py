"""each loss limit's floor as challenges last reported it

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute("ALTER TABLE challenge_state ADD COLUMN daily_floor numeric, ADD COLUMN max_floor numeric")


def downgrade() -> None:
    op.execute("ALTER TABLE challenge_state DROP COLUMN daily_floor, DROP COLUMN max_floor")
