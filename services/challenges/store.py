"""challenges' tables and queries (SQLAlchemy Core; the order path stays off the ORM)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.challenges.domain.plans import Plan
from services.challenges.domain.rulepacks import RulePack

metadata = MetaData()

plans = Table(
    "plans",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text),
    Column("rule_pack", Text),
    Column("rule_pack_version", Integer),
    Column("phase", Integer),
    Column("account_sizes", ARRAY(Numeric)),
    Column("currency", Text),
    Column("description", Text),
    Column("active", Boolean),
)

rule_packs = Table(
    "rule_packs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", Text),
    Column("definition", JSONB),
    Column("created_at", DateTime(timezone=True)),
)

challenges = Table(
    "challenges",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid),
    Column("plan_id", Text),
    Column("phase", Integer),
    Column("status", Text),
    Column("rules", JSONB),
    Column("account", JSONB),
    Column("initial_balance", Numeric),
    Column("balance", Numeric),
    Column("equity", Numeric),
    Column("currency", Text),
    Column("idempotency_key", Text),
    Column("parent_id", Uuid),
    Column("failure_reason", Text),
    Column("total_trades", Integer),
    Column("winning_trades", Integer),
    Column("losing_trades", Integer),
    Column("realized_pnl", Numeric),
    Column("created_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("last_trade_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("version", BigInteger),  # bumped by every update: optimistic orders check it
)

positions = Table(
    "positions",
    metadata,
    Column("challenge_id", Uuid, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("quantity", Numeric),
    Column("avg_price", Numeric),
    Column("stop_loss", Numeric),
    Column("take_profit", Numeric),
    Column("updated_at", DateTime(timezone=True)),
    Column("opened_at", DateTime(timezone=True)),
)

trades = Table(
    "trades",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("challenge_id", Uuid),
    Column("user_id", Uuid),
    Column("symbol", Text),
    Column("side", Text),
    Column("quantity", Numeric),
    Column("price", Numeric),
    Column("commission", Numeric),
    Column("realized_pnl", Numeric),
    Column("reason", Text),
    Column("idempotency_key", Text),
    Column("note", Text),
    Column("tags", ARRAY(Text)),
    Column("executed_at", DateTime(timezone=True)),
)

breaches = Table(
    "breaches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("challenge_id", Uuid),
    Column("rule", Text),
    Column("hard", Boolean),
    Column("parameters", JSONB),
    Column("observed", JSONB),
    Column("occurred_at", DateTime(timezone=True)),
)

events = Table(
    "events",
    metadata,
    Column("sequence", Integer, primary_key=True),
    Column("challenge_id", Uuid),
    Column("user_id", Uuid),
    Column("type", Text),
    Column("payload", JSONB),
    Column("occurred_at", DateTime(timezone=True)),
)


# --- catalogue ---------------------------------------------------------------------------


async def seed(conn: AsyncConnection, packs: tuple[RulePack, ...], catalogue: tuple[Plan, ...]) -> None:
    for pack in packs:
        await conn.execute(
            insert(rule_packs)
            .values(id=pack.id, version=pack.version, name=pack.name, definition=pack.to_dict(), created_at=func.now())
            .on_conflict_do_nothing()  # versions are immutable once published
        )
    for plan in catalogue:
        values = asdict(plan)
        values["account_sizes"] = list(plan.account_sizes)
        await conn.execute(insert(plans).values(**values).on_conflict_do_update(index_elements=["id"], set_=values))


async def list_plans(conn: AsyncConnection, *, after: str | None, limit: int) -> list[RowMapping]:
    stmt = select(plans).where(plans.c.active).order_by(plans.c.id).limit(limit)
    if after:
        stmt = stmt.where(plans.c.id > after)
    return list((await conn.execute(stmt)).mappings().all())


async def get_plan(conn: AsyncConnection, plan_id: str) -> RowMapping | None:
    return (await conn.execute(select(plans).where(plans.c.id == plan_id, plans.c.active))).mappings().first()


async def insert_plan(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    r = await conn.execute(insert(plans).values(**values, active=True).on_conflict_do_nothing())
    return r.rowcount == 1


async def get_pack(conn: AsyncConnection, pack_id: str, version: int) -> RulePack | None:
    row = (
        await conn.execute(
            select(rule_packs.c.definition).where(rule_packs.c.id == pack_id, rule_packs.c.version == version)
        )
    ).first()
    return RulePack.from_dict(row[0]) if row else None


async def list_packs(conn: AsyncConnection) -> list[RowMapping]:
    return list((await conn.execute(select(rule_packs).order_by(rule_packs.c.id, rule_packs.c.version))).mappings())


async def insert_pack(conn: AsyncConnection, pack: RulePack) -> bool:
    r = await conn.execute(
        insert(rule_packs)
        .values(id=pack.id, version=pack.version, name=pack.name, definition=pack.to_dict(), created_at=func.now())
        .on_conflict_do_nothing()
    )
    return r.rowcount == 1


# --- challenges ------------------------------------------------------------------------------


async def pending_count(conn: AsyncConnection, user_id: uuid.UUID) -> int:
    stmt = (
        select(func.count())
        .select_from(challenges)
        .where(challenges.c.user_id == user_id, challenges.c.status == "PENDING")
    )
    return int((await conn.execute(stmt)).scalar_one())


async def challenge_by_key(conn: AsyncConnection, user_id: uuid.UUID, key: str) -> RowMapping | None:
    stmt = select(challenges).where(challenges.c.user_id == user_id, challenges.c.idempotency_key == key)
    return (await conn.execute(stmt)).mappings().first()


async def get_challenge(
    conn: AsyncConnection, challenge_id: uuid.UUID, user_id: uuid.UUID | None, *, lock: bool = False
) -> RowMapping | None:
    stmt = select(challenges).where(challenges.c.id == challenge_id)
    if user_id is not None:  # None only for admins and the service itself
        stmt = stmt.where(challenges.c.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def list_challenges(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID | None,
    status: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    ids: list[uuid.UUID] | None = None,
) -> list[RowMapping]:
    stmt = select(challenges).order_by(challenges.c.created_at.desc(), challenges.c.id.desc()).limit(limit)
    if user_id is not None:
        stmt = stmt.where(challenges.c.user_id == user_id)
    if ids is not None:
        stmt = stmt.where(challenges.c.id.in_(ids))
    if status:
        stmt = stmt.where(challenges.c.status == status)
    if before is not None:
        stmt = stmt.where(
            or_(
                challenges.c.created_at < before[0],
                and_(challenges.c.created_at == before[0], challenges.c.id < before[1]),
            )
        )
    return list((await conn.execute(stmt)).mappings())


# --- positions and trades ----------------------------------------------------------------------


async def plan_names(conn: AsyncConnection) -> dict[str, str]:
    return {pid: name for pid, name in (await conn.execute(select(plans.c.id, plans.c.name))).all()}


async def get_positions(conn: AsyncConnection, challenge_id: uuid.UUID) -> list[RowMapping]:
    stmt = select(positions).where(positions.c.challenge_id == challenge_id).order_by(positions.c.symbol)
    return list((await conn.execute(stmt)).mappings())


async def position_fees(conn: AsyncConnection, challenge_id: uuid.UUID) -> dict[str, Decimal]:
    """Per open position, the commissions of its fills since it was opened."""
    stmt = (
        select(trades.c.symbol, func.sum(trades.c.commission))
        .join(positions, and_(positions.c.challenge_id == trades.c.challenge_id, positions.c.symbol == trades.c.symbol))
        .where(trades.c.challenge_id == challenge_id, trades.c.executed_at >= positions.c.opened_at)
        .group_by(trades.c.symbol)
    )
    return {sym: total for sym, total in (await conn.execute(stmt)).all()}


async def list_trades(
    conn: AsyncConnection,
    *,
    challenge_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    symbol: str,
    side: str,
    start: datetime | None,
    end: datetime | None,
    descending: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RowMapping]:
    stmt = select(trades)
    if challenge_id is not None:
        stmt = stmt.where(trades.c.challenge_id == challenge_id)
    if user_id is not None:
        stmt = stmt.where(trades.c.user_id == user_id)
    if symbol:
        stmt = stmt.where(trades.c.symbol == symbol)
    if side:
        stmt = stmt.where(trades.c.side == side)
    if start is not None:
        stmt = stmt.where(trades.c.executed_at >= start)
    if end is not None:
        stmt = stmt.where(trades.c.executed_at < end)
    if after is not None:
        t, i = after
        if descending:
            stmt = stmt.where(or_(trades.c.executed_at < t, and_(trades.c.executed_at == t, trades.c.id < i)))
        else:
            stmt = stmt.where(or_(trades.c.executed_at > t, and_(trades.c.executed_at == t, trades.c.id > i)))
    order = (trades.c.executed_at.desc(), trades.c.id.desc()) if descending else (trades.c.executed_at, trades.c.id)
    return list((await conn.execute(stmt.order_by(*order).limit(limit))).mappings())


async def get_trade(conn: AsyncConnection, trade_id: uuid.UUID, user_id: uuid.UUID | None) -> RowMapping | None:
    stmt = select(trades).where(trades.c.id == trade_id)
    if user_id is not None:
        stmt = stmt.where(trades.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()


async def update_journal(
    conn: AsyncConnection, trade_id: uuid.UUID, note: str | None, tags: list[str] | None
) -> RowMapping:
    """Set the note and/or the tags (None keeps what is stored)."""
    values: dict[str, object] = {}
    if note is not None:
        values["note"] = note
    if tags is not None:
        values["tags"] = tags
    stmt = update(trades).where(trades.c.id == trade_id).values(**values).returning(*trades.c)
    return (await conn.execute(stmt)).mappings().one()


# --- breaches, snapshots, events ------------------------------------------------------------------


async def list_breaches(conn: AsyncConnection, challenge_id: uuid.UUID, after: int, limit: int) -> list[RowMapping]:
    stmt = (
        select(breaches, func.row_number().over(order_by=(breaches.c.occurred_at, breaches.c.id)).label("n"))
        .where(breaches.c.challenge_id == challenge_id)
        .order_by(breaches.c.occurred_at, breaches.c.id)
        .offset(after)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


async def last_sequence_of(conn: AsyncConnection, challenge_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.max(events.c.sequence), 0)).where(events.c.challenge_id == challenge_id)
    return int((await conn.execute(stmt)).scalar_one())


async def last_sequence(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(events.c.sequence), 0)))).scalar_one())
