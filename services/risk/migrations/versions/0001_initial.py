"""alerts, risk scores, consumer cursors

Revision ID: 0001
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE alerts (
            id            uuid PRIMARY KEY,
            challenge_id  uuid NOT NULL,
            user_id       uuid NOT NULL,
            kind          text NOT NULL,
            severity      text NOT NULL,
            message       text NOT NULL,
            details       jsonb NOT NULL DEFAULT '{}',
            dedup_key     text NOT NULL,
            acknowledged  boolean NOT NULL DEFAULT false,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX alerts_user_created ON alerts (user_id, created_at DESC, id DESC);
        CREATE UNIQUE INDEX alerts_dedup ON alerts (dedup_key);
        CREATE TABLE risk_scores (
            challenge_id uuid PRIMARY KEY,
            user_id      uuid NOT NULL,
            score        double precision NOT NULL,
            factors      jsonb NOT NULL,
            computed_at  timestamptz NOT NULL
        );
        CREATE TABLE consumer_cursors (
            consumer      text PRIMARY KEY,
            last_sequence bigint NOT NULL,
            updated_at    timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE consumer_cursors, risk_scores, alerts")
