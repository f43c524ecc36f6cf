"""fills and challenge state consumed from the challenges event feed

Revision ID: 0002
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE fills (
            sequence      bigint PRIMARY KEY,          -- the event's sequence: a replay inserts nothing
            challenge_id  uuid NOT NULL,
            user_id       uuid NOT NULL,
            symbol        text NOT NULL,
            closing       boolean NOT NULL,
            pnl           numeric NOT NULL,            -- realised minus commission
            notional      numeric NOT NULL,
            executed_at   timestamptz NOT NULL
        );
        CREATE INDEX fills_challenge ON fills (challenge_id, sequence);
        CREATE TABLE challenge_state (
            challenge_id    uuid PRIMARY KEY,
            user_id         uuid NOT NULL,
            initial_balance numeric NOT NULL,
            daily_loss      numeric,
            max_loss        numeric,
            profit_target   numeric,
            status          text NOT NULL,
            balance         numeric NOT NULL,
            equity          numeric NOT NULL,
            day_start       numeric NOT NULL,
            peak            numeric NOT NULL,
            exposure        jsonb NOT NULL DEFAULT '{}',   -- symbol -> notional
            losing_streak   integer NOT NULL DEFAULT 0,
            trades_today    integer NOT NULL DEFAULT 0,
            trading_day     text NOT NULL DEFAULT '',
            last_event_at   timestamptz NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE challenge_state, fills")
