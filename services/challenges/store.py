"""challenges' tables and queries (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import ARRAY, Boolean, Column, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.challenges.domain.plans import Plan

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


async def seed_plans(conn: AsyncConnection, catalogue: tuple[Plan, ...]) -> None:
    for plan in catalogue:
        values = asdict(plan)
        values["account_sizes"] = list(plan.account_sizes)
        await conn.execute(insert(plans).values(**values).on_conflict_do_update(index_elements=["id"], set_=values))


async def list_plans(conn: AsyncConnection, *, after: str | None, limit: int) -> list[RowMapping]:
    stmt = select(plans).where(plans.c.active).order_by(plans.c.id).limit(limit)
    if after:
        stmt = stmt.where(plans.c.id > after)
    return list((await conn.execute(stmt)).mappings().all())
