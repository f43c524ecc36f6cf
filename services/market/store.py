"""market's tables and queries (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import driver_connection
from services.market.domain.candles import Candle
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


candles = Table(
    "candles",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("interval", Text, primary_key=True),
    Column("open_time", DateTime(timezone=True), primary_key=True),
    Column("open", Numeric),
    Column("high", Numeric),
    Column("low", Numeric),
    Column("close", Numeric),
    Column("volume", Numeric),
)

provider_state = Table(
    "provider_state",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("state", JSONB),
    Column("updated_at", DateTime(timezone=True)),
)


async def upsert_candles(conn: AsyncConnection, rows: list[Candle]) -> None:
    """Write candle snapshots; the process holds each open candle's full state."""
    if not rows:
        return
    stmt = insert(candles).values(
        [
            {
                "symbol": c.symbol,
                "interval": c.interval,
                "open_time": c.open_time,
                "open": c.open,
                "high": c.high,
                "low": c.low,
                "close": c.close,
                "volume": c.volume,
            }
            for c in rows
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["symbol", "interval", "open_time"],
        set_={k: stmt.excluded[k] for k in ("open", "high", "low", "close", "volume")},
    )
    await conn.execute(stmt)


async def latest_candles(conn: AsyncConnection) -> list[Candle]:
    """The newest candle of every (symbol, interval): where aggregation resumes after a restart."""
    stmt = (
        select(candles)
        .distinct(candles.c.symbol, candles.c.interval)
        .order_by(candles.c.symbol, candles.c.interval, candles.c.open_time.desc())
    )
    return [Candle(**dict(r)) for r in (await conn.execute(stmt)).mappings()]


async def minute_candles_since(conn: AsyncConnection, since: datetime) -> list[Candle]:
    stmt = select(candles).where(candles.c.interval == "1m", candles.c.open_time >= since)
    return [Candle(**dict(r)) for r in (await conn.execute(stmt)).mappings()]


async def chart(
    conn: AsyncConnection, symbol: str, interval: str, start: datetime | None, end: datetime | None, limit: int
) -> list[Candle]:
    stmt = select(candles).where(candles.c.symbol == symbol, candles.c.interval == interval)
    if start is not None:
        stmt = stmt.where(candles.c.open_time >= start)
    if end is not None:
        stmt = stmt.where(candles.c.open_time < end)
    if start is not None:
        stmt = stmt.order_by(candles.c.open_time).limit(limit)
        rows = list((await conn.execute(stmt)).mappings())
    else:  # the most recent `limit`, oldest first
        stmt = stmt.order_by(candles.c.open_time.desc()).limit(limit)
        rows = list(reversed(list((await conn.execute(stmt)).mappings())))
    return [Candle(**dict(r)) for r in rows]


async def load_state(conn: AsyncConnection, provider: str) -> dict[str, Any]:
    row = (await conn.execute(select(provider_state.c.state).where(provider_state.c.provider == provider))).first()
    return dict(row[0]) if row else {}


async def save_state(conn: AsyncConnection, provider: str, state: dict[str, Any], now: datetime) -> None:
    stmt = insert(provider_state).values(provider=provider, state=state, updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["provider"], set_={"state": stmt.excluded.state, "updated_at": now})
    )


async def symbols_with_candles(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(select(candles.c.symbol).where(candles.c.interval == "1d").distinct())
    return {r[0] for r in rows}


async def insert_history(conn: AsyncConnection, rows: list[Candle]) -> None:
    """A fresh symbol's past (tens of thousands of rows) by COPY, in the caller's transaction."""
    if not rows:
        return
    raw = await driver_connection(conn)
    await raw.copy_records_to_table(
        "candles",
        columns=["symbol", "interval", "open_time", "open", "high", "low", "close", "volume"],
        records=[(c.symbol, c.interval, c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in rows],
    )
