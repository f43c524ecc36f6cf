"""users, refresh tokens, login attempts, idempotent registrations

Revision ID: 0001
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE users (
            id            uuid PRIMARY KEY,
            email         text NOT NULL,
            email_key     text NOT NULL UNIQUE,        -- normalised, case-folded
            display_name  text NOT NULL DEFAULT '',
            password_hash text NOT NULL,
            role          text NOT NULL DEFAULT 'trader' CHECK (role IN ('trader', 'admin')),
            disabled      boolean NOT NULL DEFAULT false,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE registration_keys (
            idempotency_key text PRIMARY KEY,
            user_id         uuid NOT NULL REFERENCES users(id),
            request_hash    text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE refresh_tokens (
            id          uuid PRIMARY KEY,
            family_id   uuid NOT NULL,
            user_id     uuid NOT NULL REFERENCES users(id),
            token_hash  bytea NOT NULL UNIQUE,         -- sha256 of the opaque token
            issued_at   timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            rotated_at  timestamptz,
            revoked_at  timestamptz
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
        CREATE TABLE login_throttle (
            key          text PRIMARY KEY,             -- 'account:<email_key>' or 'addr:<ip>'
            failures     integer NOT NULL DEFAULT 0,
            locked_until timestamptz,
            updated_at   timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE login_throttle, refresh_tokens, registration_keys, users")
