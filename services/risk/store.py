"""risk's tables and queries (SQLAlchemy Core)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, MetaData, Table, Text, Uuid, and_, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("challenge_id", Uuid),
    Column("user_id", Uuid),
    Column("kind", Text),
    Column("severity", Text),
    Column("message", Text),
    Column("details", JSONB),
    Column("dedup_key", Text),
    Column("acknowledged", Boolean),
    Column("created_at", DateTime(timezone=True)),
    Column("sequence", BigInteger),
)


async def list_alerts(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID | None,
    challenge_id: uuid.UUID | None,
    kind: str,
    severity: str,
    unacknowledged_only: bool,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RowMapping]:
    stmt = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit)
    if user_id is not None:  # None only for admins
        stmt = stmt.where(alerts.c.user_id == user_id)
    if challenge_id is not None:
        stmt = stmt.where(alerts.c.challenge_id == challenge_id)
    if kind:
        stmt = stmt.where(alerts.c.kind == kind)
    if severity:
        stmt = stmt.where(alerts.c.severity == severity)
    if unacknowledged_only:
        stmt = stmt.where(alerts.c.acknowledged.is_(False))
    if before is not None:
        stmt = stmt.where(
            or_(alerts.c.created_at < before[0], and_(alerts.c.created_at == before[0], alerts.c.id < before[1]))
        )
    return list((await conn.execute(stmt)).mappings().all())
