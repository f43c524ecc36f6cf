"""the event feed consumed in leased partitions: leases, heartbeats, a cursor per partition

Revision ID: 0004
"""

from alembic import op

from services.common.migrations import create_partition_leases
from services.common.partition_leases import PARTITIONS

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    create_partition_leases(PARTITIONS)
    # Each partition resumes where the one feed-wide cursor stood (nothing re-applied, nothing skipped).
    op.execute(
        "INSERT INTO consumer_cursors (consumer, last_sequence, updated_at) "
        "SELECT 'challenges-events:' || p, coalesce((SELECT last_sequence FROM consumer_cursors "
        "WHERE consumer = 'challenges-events'), 0), now() "
        f"FROM generate_series(0, {PARTITIONS - 1}) AS p"
    )
    op.execute("DELETE FROM consumer_cursors WHERE consumer = 'challenges-events'")


def downgrade() -> None:
    op.execute("DROP TABLE partition_leases, replicas")
    op.execute(
        "INSERT INTO consumer_cursors (consumer, last_sequence, updated_at) "
        "SELECT 'challenges-events', min(last_sequence), now() FROM consumer_cursors "
        "WHERE consumer LIKE 'challenges-events:%'"
    )
    op.execute("DELETE FROM consumer_cursors WHERE consumer LIKE 'challenges-events:%'")
