"""market's tables and queries (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.market.domain.instruments import Instrument

metadata = MetaData()

instruments = Table(
    "instruments",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("display_name", Text),
    Column("asset_class", Text),
    Column("quote_currency", Text),
    Column("tick_size", Numeric),
    Column("contract_size", Numeric),
    Column("min_quantity", Numeric),
    Column("max_quantity", Numeric),
    Column("quantity_step", Numeric),
    Column("calendar", Text),
    Column("exchange", Text),
    Column("start_price", Numeric),
    Column("volatility", Float),
    Column("spread_ticks", Integer),
    Column("enabled", Boolean),
)


async def seed(conn: AsyncConnection, catalogue: tuple[Instrument, ...]) -> None:
    """Upsert the built-in catalogue; admin-disabled instruments stay disabled."""
    for inst in catalogue:
        values = asdict(inst)
        stmt = insert(instruments).values(**values, enabled=True)
        stmt = stmt.on_conflict_do_update(index_elements=["symbol"], set_=values)
        await conn.execute(stmt)


async def list_instruments(
    conn: AsyncConnection, *, asset_class: str | None, after: str | None, limit: int
) -> list[RowMapping]:
    stmt = select(instruments).where(instruments.c.enabled).order_by(instruments.c.symbol).limit(limit)
    if asset_class:
        stmt = stmt.where(instruments.c.asset_class == asset_class)
    if after:
        stmt = stmt.where(instruments.c.symbol > after)
    return list((await conn.execute(stmt)).mappings().all())


async def all_instruments(conn: AsyncConnection) -> list[RowMapping]:
    stmt = select(instruments).where(instruments.c.enabled).order_by(instruments.c.symbol)
    return list((await conn.execute(stmt)).mappings().all())
