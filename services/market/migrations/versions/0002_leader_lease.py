"""the ingestion leader's lease

Revision ID: 0002
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE leader_leases (
            name       text PRIMARY KEY,
            owner      text NOT NULL,
            term       bigint NOT NULL,
            expires_at timestamptz NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE leader_leases")
