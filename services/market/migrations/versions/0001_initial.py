"""instruments, candles, provider state

Revision ID: 0001
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE instruments (
            symbol         text PRIMARY KEY,
            display_name   text NOT NULL,
            asset_class    text NOT NULL,
            quote_currency text NOT NULL,
            tick_size      numeric NOT NULL CHECK (tick_size > 0),
            contract_size  numeric NOT NULL CHECK (contract_size > 0),
            min_quantity   numeric NOT NULL,
            max_quantity   numeric NOT NULL,
            quantity_step  numeric NOT NULL,
            calendar       text NOT NULL,
            exchange       text NOT NULL,
            start_price    numeric NOT NULL,
            volatility     double precision NOT NULL,
            spread_ticks   integer NOT NULL,
            enabled        boolean NOT NULL DEFAULT true
        );
        CREATE TABLE candles (
            symbol     text NOT NULL REFERENCES instruments(symbol),
            interval   text NOT NULL,
            open_time  timestamptz NOT NULL,
            open       numeric NOT NULL,
            high       numeric NOT NULL,
            low        numeric NOT NULL,
            close      numeric NOT NULL,
            volume     numeric NOT NULL DEFAULT 0,
            PRIMARY KEY (symbol, interval, open_time)
        );
        CREATE TABLE provider_state (
            provider     text PRIMARY KEY,
            state        jsonb NOT NULL DEFAULT '{}',
            updated_at   timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE provider_state, candles, instruments")
