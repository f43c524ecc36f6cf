"""each replica's liveness lock key: a killed replica's share is taken over when its session
ends, not a lease TTL later (services/common/partition_leases.py)

Revision ID: 0006
"""

from services.common.migrations import add_replica_liveness, drop_replica_liveness

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    add_replica_liveness()


def downgrade() -> None:
    drop_replica_liveness()
