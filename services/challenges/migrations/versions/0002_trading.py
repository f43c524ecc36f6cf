"""rule packs, challenges, positions, trades, breaches, daily snapshots, event outbox

Revision ID: 0002
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE rule_packs (
            id          text NOT NULL,
            version     integer NOT NULL,
            name        text NOT NULL,
            definition  jsonb NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (id, version)
        );
        CREATE TABLE challenges (
            id              uuid PRIMARY KEY,
            user_id         uuid NOT NULL,
            plan_id         text NOT NULL REFERENCES plans(id),
            phase           integer NOT NULL,
            status          text NOT NULL,
            rules           jsonb NOT NULL,          -- copied from the pack at creation
            account         jsonb NOT NULL,          -- the engine's state
            initial_balance numeric NOT NULL,
            balance         numeric NOT NULL,
            equity          numeric NOT NULL,
            currency        text NOT NULL,
            idempotency_key text,
            parent_id       uuid REFERENCES challenges(id),
            failure_reason  text NOT NULL DEFAULT '',
            total_trades    integer NOT NULL DEFAULT 0,
            winning_trades  integer NOT NULL DEFAULT 0,
            losing_trades   integer NOT NULL DEFAULT 0,
            realized_pnl    numeric NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL,
            started_at      timestamptz,
            ended_at        timestamptz,
            last_trade_at   timestamptz,
            updated_at      timestamptz NOT NULL,
            UNIQUE (user_id, idempotency_key)
        );
        CREATE INDEX challenges_user ON challenges (user_id, created_at DESC, id DESC);
        CREATE INDEX challenges_live ON challenges (status) WHERE status IN ('ACTIVE', 'PAUSED');
        CREATE TABLE positions (
            challenge_id uuid NOT NULL REFERENCES challenges(id),
            symbol       text NOT NULL,
            quantity     numeric NOT NULL,
            avg_price    numeric NOT NULL,
            stop_loss    numeric,
            take_profit  numeric,
            updated_at   timestamptz NOT NULL,
            PRIMARY KEY (challenge_id, symbol)
        );
        CREATE TABLE trades (
            id              uuid PRIMARY KEY,
            challenge_id    uuid NOT NULL REFERENCES challenges(id),
            user_id         uuid NOT NULL,
            symbol          text NOT NULL,
            side            text NOT NULL,
            quantity        numeric NOT NULL,
            price           numeric NOT NULL,
            commission      numeric NOT NULL,
            realized_pnl    numeric NOT NULL,
            reason          text NOT NULL,
            idempotency_key text,
            note            text NOT NULL DEFAULT '',
            tags            text[] NOT NULL DEFAULT '{}',
            executed_at     timestamptz NOT NULL,
            UNIQUE (challenge_id, idempotency_key)
        );
        CREATE INDEX trades_challenge_time ON trades (challenge_id, executed_at, id);
        CREATE INDEX trades_user_time ON trades (user_id, executed_at, id);
        CREATE TABLE breaches (
            id           uuid PRIMARY KEY,
            challenge_id uuid NOT NULL REFERENCES challenges(id),
            rule         text NOT NULL,
            hard         boolean NOT NULL,
            parameters   jsonb NOT NULL,
            observed     jsonb NOT NULL,
            occurred_at  timestamptz NOT NULL
        );
        CREATE INDEX breaches_challenge ON breaches (challenge_id, occurred_at, id);
        CREATE TABLE daily_snapshots (
            challenge_id  uuid NOT NULL REFERENCES challenges(id),
            trading_day   date NOT NULL,
            start_balance numeric NOT NULL,
            start_equity  numeric NOT NULL,
            PRIMARY KEY (challenge_id, trading_day)
        );
        CREATE TABLE events (
            sequence     bigserial PRIMARY KEY,
            challenge_id uuid NOT NULL,
            user_id      uuid NOT NULL,
            type         text NOT NULL,
            payload      jsonb NOT NULL,
            occurred_at  timestamptz NOT NULL
        );
        CREATE INDEX events_challenge ON events (challenge_id, sequence);
        """
    )
    # Breach records are append-only: "why did I fail" must have one unchanging answer.
    op.execute(
        """
        CREATE FUNCTION breaches_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'breaches are append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER breaches_no_change BEFORE UPDATE OR DELETE ON breaches "
        "FOR EACH ROW EXECUTE FUNCTION breaches_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TABLE events, daily_snapshots, breaches, trades, positions, challenges, rule_packs")
    op.execute("DROP FUNCTION breaches_append_only")
