"""recorded sessions: what market published, by session, partitioned by day

Revision ID: 0003
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE recorded_sessions (
            id          bigserial PRIMARY KEY,
            term        bigint NOT NULL,
            started_at  timestamptz NOT NULL,
            ended_at    timestamptz NOT NULL,
            symbols     text[] NOT NULL DEFAULT '{}',
            tick_count  bigint NOT NULL DEFAULT 0
        );
        CREATE TABLE recorded_ticks (
            session_id  bigint NOT NULL,
            symbol      text NOT NULL,
            start       timestamptz NOT NULL,
            offsets_us  integer[] NOT NULL,
            bids        bigint[] NOT NULL,
            asks        bigint[] NOT NULL
        ) PARTITION BY RANGE (start);
        CREATE INDEX recorded_ticks_session ON recorded_ticks (session_id, start);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE recorded_ticks, recorded_sessions")
