"""alerts get a sequence: the order they were raised in, which a browser's stream resumes after

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # Existing alerts are numbered in the order they were raised.
    op.execute("CREATE SEQUENCE alerts_sequence_seq")
    op.execute("ALTER TABLE alerts ADD COLUMN sequence bigint")
    op.execute(
        "UPDATE alerts SET sequence = n FROM (SELECT id, nextval('alerts_sequence_seq') AS n FROM "
        "(SELECT id FROM alerts ORDER BY created_at, id) o) numbered WHERE alerts.id = numbered.id"
    )
    op.execute("ALTER TABLE alerts ALTER COLUMN sequence SET DEFAULT nextval('alerts_sequence_seq')")
    op.execute("ALTER TABLE alerts ALTER COLUMN sequence SET NOT NULL")
    op.execute("ALTER SEQUENCE alerts_sequence_seq OWNED BY alerts.sequence")
    op.execute("CREATE UNIQUE INDEX alerts_sequence ON alerts (sequence)")


def downgrade() -> None:
    op.execute("ALTER TABLE alerts DROP COLUMN sequence")
