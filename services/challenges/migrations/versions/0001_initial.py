"""plans

Revision ID: 0001
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE plans (
            id                text PRIMARY KEY,
            name              text NOT NULL,
            rule_pack         text NOT NULL,
            rule_pack_version integer NOT NULL,
            phase             integer NOT NULL,
            account_sizes     numeric[] NOT NULL,
            currency          text NOT NULL,
            description       text NOT NULL DEFAULT '',
            active            boolean NOT NULL DEFAULT true
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE plans")
