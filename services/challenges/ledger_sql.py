"""The ledger's SQL, run on asyncpg directly.

Every order runs these statements; SQLAlchemy Core's per-statement overhead was most of
an order's CPU (profile in bench/RESULTS.md), so the hot path talks to the driver through
the pool's own connection (one engine, one pool per process) with prepared statements.
JSON columns travel as text (the pool's codec) and are parsed here.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

CHALLENGE_COLUMNS = (
    "id, user_id, plan_id, phase, status, rules::text AS rules, account::text AS account, initial_balance, balance, "
    "equity, currency, idempotency_key, parent_id, failure_reason, total_trades, winning_trades, losing_trades, "
    "realized_pnl, created_at, started_at, ended_at, last_trade_at, updated_at"
)


def _challenge(r: asyncpg.Record | None) -> dict[str, Any] | None:
    if r is None:
        return None
    d = dict(r)
    d["rules"] = json.loads(d["rules"])
    d["account"] = json.loads(d["account"])
    return d


async def lock_challenge(c: asyncpg.Connection, cid: uuid.UUID, user_id: uuid.UUID | None) -> dict[str, Any] | None:
    if user_id is None:
        r = await c.fetchrow(f"SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1 FOR UPDATE", cid)
    else:
        r = await c.fetchrow(
            f"SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1 AND user_id = $2 FOR UPDATE", cid, user_id
        )
    return _challenge(r)


async def positions(c: asyncpg.Connection, cid: uuid.UUID) -> list[asyncpg.Record]:
    return await c.fetch("SELECT * FROM positions WHERE challenge_id = $1 ORDER BY symbol", cid)


async def trade_by_key(c: asyncpg.Connection, cid: uuid.UUID, key: str) -> asyncpg.Record | None:
    return await c.fetchrow("SELECT * FROM trades WHERE challenge_id = $1 AND idempotency_key = $2", cid, key)


async def insert_trade(c: asyncpg.Connection, v: dict[str, Any]) -> asyncpg.Record:
    return await c.fetchrow(
        "INSERT INTO trades (id, challenge_id, user_id, symbol, side, quantity, price, commission, realized_pnl, "
        "reason, idempotency_key, note, tags, executed_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING *",
        v["id"],
        v["challenge_id"],
        v["user_id"],
        v["symbol"],
        v["side"],
        v["quantity"],
        v["price"],
        v["commission"],
        v["realized_pnl"],
        v["reason"],
        v["idempotency_key"],
        v["note"],
        v["tags"],
        v["executed_at"],
    )


async def save_position(
    c: asyncpg.Connection,
    cid: uuid.UUID,
    symbol: str,
    qty: Decimal,
    avg: Decimal,
    sl: Decimal | None,
    tp: Decimal | None,
    now: datetime,
) -> None:
    await c.execute(
        "INSERT INTO positions (challenge_id, symbol, quantity, avg_price, stop_loss, take_profit, updated_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (challenge_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, "
        "avg_price = EXCLUDED.avg_price, stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, "
        "updated_at = EXCLUDED.updated_at",
        cid,
        symbol,
        qty,
        avg,
        sl,
        tp,
        now,
    )


async def update_challenge(c: asyncpg.Connection, cid: uuid.UUID, v: dict[str, Any]) -> None:
    await c.execute(
        "UPDATE challenges SET account = $2::jsonb, status = $3, balance = $4, equity = $5, updated_at = $6, "
        "failure_reason = $7, ended_at = $8, last_trade_at = $9, total_trades = $10, winning_trades = $11, "
        "losing_trades = $12, realized_pnl = $13, started_at = $14 WHERE id = $1",
        cid,
        json.dumps(v["account"]),
        v["status"],
        v["balance"],
        v["equity"],
        v["updated_at"],
        v["failure_reason"],
        v["ended_at"],
        v["last_trade_at"],
        v["total_trades"],
        v["winning_trades"],
        v["losing_trades"],
        v["realized_pnl"],
        v["started_at"],
    )


async def insert_breach(c: asyncpg.Connection, v: dict[str, Any]) -> None:
    await c.execute(
        "INSERT INTO breaches (id, challenge_id, rule, hard, parameters, observed, occurred_at) "
        "VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7)",
        v["id"],
        v["challenge_id"],
        v["rule"],
        v["hard"],
        json.dumps(v["parameters"], default=str),
        json.dumps(v["observed"], default=str),
        v["occurred_at"],
    )


async def save_snapshot(c: asyncpg.Connection, cid: uuid.UUID, day: date, balance: Decimal, equity: Decimal) -> None:
    await c.execute(
        "INSERT INTO daily_snapshots (challenge_id, trading_day, start_balance, start_equity) VALUES ($1,$2,$3,$4) "
        "ON CONFLICT DO NOTHING",
        cid,
        day,
        balance,
        equity,
    )


async def append_events(c: asyncpg.Connection, rows: list[dict[str, Any]]) -> int | None:
    """Outbox rows in the caller's transaction; the advisory lock makes commit order equal
    sequence order, so a reader following `sequence > cursor` never skips a late commit."""
    if not rows:
        return None
    await c.execute("SELECT pg_advisory_xact_lock(7245001)")
    return await c.fetchval(
        "WITH ins AS (INSERT INTO events (challenge_id, user_id, type, payload, occurred_at) "
        "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]::jsonb[], $5::timestamptz[]) "
        "RETURNING sequence) SELECT max(sequence) FROM ins",
        [r["challenge_id"] for r in rows],
        [r["user_id"] for r in rows],
        [r["type"] for r in rows],
        [json.dumps(r["payload"], default=str) for r in rows],
        [r["occurred_at"] for r in rows],
    )


async def plan(c: asyncpg.Connection, plan_id: str) -> asyncpg.Record | None:
    return await c.fetchrow("SELECT * FROM plans WHERE id = $1 AND active", plan_id)


async def pack_definition(c: asyncpg.Connection, pack_id: str, version: int) -> dict[str, Any] | None:
    raw = await c.fetchval("SELECT definition::text FROM rule_packs WHERE id = $1 AND version = $2", pack_id, version)
    return json.loads(raw) if raw else None


async def insert_challenge(c: asyncpg.Connection, v: dict[str, Any]) -> uuid.UUID:
    return await c.fetchval(
        "INSERT INTO challenges (id, user_id, plan_id, phase, status, rules, account, initial_balance, balance, "
        "equity, currency, idempotency_key, parent_id, failure_reason, total_trades, winning_trades, losing_trades, "
        "realized_pnl, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9,$10,$11,$12,$13,$14,"
        "$15,$16,$17,$18,$19,$20) RETURNING id",
        v["id"],
        v["user_id"],
        v["plan_id"],
        v["phase"],
        v["status"],
        json.dumps(v["rules"]),
        json.dumps(v["account"]),
        v["initial_balance"],
        v["balance"],
        v["equity"],
        v["currency"],
        v["idempotency_key"],
        v["parent_id"],
        v["failure_reason"],
        v["total_trades"],
        v["winning_trades"],
        v["losing_trades"],
        v["realized_pnl"],
        v["created_at"],
        v["updated_at"],
    )
