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
    "realized_pnl, created_at, started_at, ended_at, last_trade_at, updated_at, version"
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


async def positions_and_trade(
    c: asyncpg.Connection, cid: uuid.UUID, key: str | None
) -> tuple[list[asyncpg.Record], asyncpg.Record | None]:
    """The challenge's positions and the trade already filled under `key`, in one round trip.

    Read after the challenge row is locked, in a statement of its own: a statement's snapshot
    is taken when it starts, so reading them together with the lock could see the state from
    before a concurrent order that the lock waited for.
    """
    r = await c.fetchrow(
        "SELECT ARRAY(SELECT p FROM positions p WHERE p.challenge_id = $1 ORDER BY p.symbol) AS positions, "
        "(SELECT t FROM trades t WHERE t.challenge_id = $1 AND t.idempotency_key = $2) AS seen",
        cid,
        key,
    )
    assert r is not None
    return list(r["positions"]), r["seen"]


async def challenge_state(
    c: asyncpg.Connection, cid: uuid.UUID, user_id: uuid.UUID, key: str | None
) -> tuple[dict[str, Any] | None, list[asyncpg.Record], asyncpg.Record | None]:
    """The challenge, its positions and the trade already filled under `key`, without a lock.

    One statement, so one snapshot: the row's `version` says which state the positions
    belong to, and `write_changes` writes only if that version is still current.
    """
    r = await c.fetchrow(
        f"SELECT {CHALLENGE_COLUMNS}, "
        "ARRAY(SELECT p FROM positions p WHERE p.challenge_id = $1 ORDER BY p.symbol) AS positions, "
        "(SELECT t FROM trades t WHERE t.challenge_id = $1 AND t.idempotency_key = $3) AS seen "
        "FROM challenges WHERE id = $1 AND user_id = $2",
        cid,
        user_id,
        key,
    )
    if r is None:
        return None, [], None
    row = _challenge(r)
    assert row is not None
    return row, list(row.pop("positions")), row.pop("seen")


# Every outbox writer takes this transaction-scoped lock before drawing sequence numbers, so
# commit order equals sequence order (see append_events).
OUTBOX_LOCK = 7245001

# One statement writes everything an order changes: its fills, the positions they touched, the
# challenge row and the outbox events. The challenge row is updated only at the version the
# change was computed from; every other write joins that update, so a stale change writes
# nothing at all (it is one statement, hence atomic, even outside a transaction block). The
# advisory lock is taken only when there are events, just before their sequence numbers are drawn.
_WRITE = f"""
WITH
 ch AS (
  UPDATE challenges SET account = $20::jsonb, status = $21, balance = $22, equity = $23, updated_at = $3,
     failure_reason = $24, ended_at = $25, last_trade_at = $26, total_trades = $27, winning_trades = $28,
     losing_trades = $29, realized_pnl = $30, started_at = $31, version = version + 1
  WHERE id = $1 AND version = $34
  RETURNING id),
 tr AS (
  INSERT INTO trades (id, challenge_id, user_id, symbol, side, quantity, price, commission, realized_pnl,
                      reason, idempotency_key, note, tags, executed_at)
  SELECT u.id, $1, $2, u.symbol, u.side, u.quantity, u.price, u.commission, u.realized_pnl, u.reason, u.key,
         u.note, ARRAY(SELECT jsonb_array_elements_text(u.tags)), $3
  FROM ch, unnest($4::uuid[], $5::text[], $6::text[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[],
                  $11::text[], $12::text[], $13::text[], $14::text[]::jsonb[])
       AS u(id, symbol, side, quantity, price, commission, realized_pnl, reason, key, note, tags)),
 pos AS (
  INSERT INTO positions (challenge_id, symbol, quantity, avg_price, stop_loss, take_profit, updated_at)
  SELECT $1, p.symbol, p.quantity, p.avg_price, p.sl, p.tp, $3
  FROM ch, unnest($15::text[], $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[])
       AS p(symbol, quantity, avg_price, sl, tp)
  ON CONFLICT (challenge_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, avg_price = EXCLUDED.avg_price,
     stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, updated_at = EXCLUDED.updated_at),
 lk AS (SELECT pg_advisory_xact_lock({OUTBOX_LOCK}) FROM ch WHERE cardinality($32::text[]) > 0),
 ev AS (
  INSERT INTO events (challenge_id, user_id, type, payload, occurred_at)
  SELECT $1, $2, e.type, e.payload, $3 FROM lk, unnest($32::text[], $33::text[]::jsonb[]) AS e(type, payload)
  RETURNING sequence)
SELECT EXISTS (SELECT FROM ch) AS applied, (SELECT max(sequence) FROM ev) AS last
"""


async def write_changes(
    c: asyncpg.Connection,
    cid: uuid.UUID,
    uid: uuid.UUID,
    now: datetime,
    trades: list[dict[str, Any]],
    positions: list[tuple[str, Decimal, Decimal, Decimal | None, Decimal | None]],
    challenge: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
    version: int,
) -> tuple[bool, int | None]:
    """Whether the change applied (the row was still at `version`), and the last outbox
    sequence written (None without events)."""

    def col(rows: list[Any], k: Any) -> list[Any]:
        return [r[k] for r in rows]

    r = await c.fetchrow(
        _WRITE,
        cid,
        uid,
        now,
        col(trades, "id"),
        col(trades, "symbol"),
        col(trades, "side"),
        col(trades, "quantity"),
        col(trades, "price"),
        col(trades, "commission"),
        col(trades, "realized_pnl"),
        col(trades, "reason"),
        col(trades, "idempotency_key"),
        col(trades, "note"),
        [json.dumps(t["tags"]) for t in trades],
        *(col(positions, i) for i in range(5)),
        json.dumps(challenge["account"]),
        challenge["status"],
        challenge["balance"],
        challenge["equity"],
        challenge["failure_reason"],
        challenge["ended_at"],
        challenge["last_trade_at"],
        challenge["total_trades"],
        challenge["winning_trades"],
        challenge["losing_trades"],
        challenge["realized_pnl"],
        challenge["started_at"],
        [kind for kind, _ in events],
        [json.dumps(payload, default=str) for _, payload in events],
        version,
    )
    assert r is not None
    return r["applied"], r["last"]


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
    await c.execute("SELECT pg_advisory_xact_lock($1)", OUTBOX_LOCK)
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


async def insert_challenge(c: asyncpg.Connection, v: dict[str, Any]) -> dict[str, Any] | None:
    """The new challenge's row; None when its idempotency key was already used (a racing retry)."""
    r = await c.fetchrow(
        "INSERT INTO challenges (id, user_id, plan_id, phase, status, rules, account, initial_balance, balance, "
        "equity, currency, idempotency_key, parent_id, failure_reason, total_trades, winning_trades, losing_trades, "
        "realized_pnl, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9,$10,$11,$12,$13,$14,"
        f"$15,$16,$17,$18,$19,$20) ON CONFLICT DO NOTHING RETURNING {CHALLENGE_COLUMNS}",
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
    return _challenge(r)
