"""token cut-offs: access tokens refused before they expire

Revision ID: 0002
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE token_cutoffs (
            sequence   bigserial PRIMARY KEY,
            subject    text NOT NULL,            -- 'user:<uuid>' | 'session:<uuid>'
            not_before timestamptz NOT NULL,     -- tokens issued before it are refused
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX token_cutoffs_created ON token_cutoffs (created_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE token_cutoffs")
