"""partition leases and replica heartbeats for mark-to-market

Revision ID: 0003
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0003"
down_revision = "0002"

PARTITIONS = 16


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE replicas (
            owner   text PRIMARY KEY,
            seen_at timestamptz NOT NULL
        );
        CREATE TABLE partition_leases (
            partition  integer PRIMARY KEY,
            owner      text NOT NULL DEFAULT '',
            expires_at timestamptz NOT NULL DEFAULT '-infinity'
        );
        """
    )
    op.execute(f"INSERT INTO partition_leases (partition) SELECT generate_series(0, {PARTITIONS - 1})")


def downgrade() -> None:
    op.execute("DROP TABLE partition_leases, replicas")
