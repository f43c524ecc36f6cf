"""refresh tokens remember their session's login: a session has an absolute lifetime

Revision ID: 0003
"""

from alembic import op

from services.common.migrations import execute_script

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE refresh_tokens ADD COLUMN session_started_at timestamptz;
        -- Sessions begun before: counted from their family's first token.
        UPDATE refresh_tokens r SET session_started_at = f.started
          FROM (SELECT family_id, min(issued_at) AS started FROM refresh_tokens GROUP BY family_id) f
         WHERE r.family_id = f.family_id;
        ALTER TABLE refresh_tokens ALTER COLUMN session_started_at SET NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE refresh_tokens DROP COLUMN session_started_at")
