"""partition leases and replica heartbeats for mark-to-market

Revision ID: 0003
"""

from alembic import op

from services.common.migrations import create_partition_leases

revision = "0003"
down_revision = "0002"

PARTITIONS = 16


def upgrade() -> None:
    create_partition_leases(PARTITIONS)


def downgrade() -> None:
    op.execute("DROP TABLE partition_leases, replicas")
