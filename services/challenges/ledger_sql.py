"""The ledger's SQL, run on asyncpg directly.

Every order runs these statements; SQLAlchemy Core's per-statement overhead was most of
an order's CPU (profile in bench/RESULTS.md), so the hot path talks to the driver through
the pool's own connection (one engine, one pool per process) with prepared statements.
JSON columns travel as text (the pool's codec) and are parsed here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.challenges.domain.events import Event

CHALLENGE_COLUMNS = (
    "id, user_id, plan_id, phase, status, rules::text AS rules, account::text AS account, initial_balance, balance, "
    "equity, currency, idempotency_key, parent_id, failure_reason, total_trades, winning_trades, losing_trades, "
    "realized_pnl, created_at, started_at, ended_at, last_trade_at, updated_at, version"
)


def _challenge(r: asyncpg.Record | None) -> dict[str, Any] | None:
    if r is None:
        return None
    d = dict(r)
    # The rules stay text: challenges of one program share it, and one Rules built from it
    # (states.py) — decoding each challenge's copy was a fifth of a cold start.
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


async def lock_challenges(c: asyncpg.Connection, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Lock several challenges in id order (the order every multi-row writer uses). Read their
    positions after this, in a statement of its own (see positions_and_trade)."""
    records = await c.fetch(
        f"SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids
    )
    rows = [_challenge(r) for r in records]
    return [r for r in rows if r is not None]


async def positions_of(c: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The positions of several challenges, by challenge, each list in symbol order."""
    found: dict[uuid.UUID, list[asyncpg.Record]] = {cid: [] for cid in ids}
    for r in await c.fetch(
        "SELECT p FROM positions p WHERE p.challenge_id = ANY($1::uuid[]) ORDER BY p.challenge_id, p.symbol", ids
    ):
        found[r["p"]["challenge_id"]].append(r["p"])
    return found


async def challenge_states(
    c: asyncpg.Connection, wanted: list[tuple[uuid.UUID, uuid.UUID, str | None]]
) -> dict[uuid.UUID, tuple[dict[str, Any], list[asyncpg.Record], asyncpg.Record | None]]:
    """Several challenges (id, owner, idempotency key), each with its positions and the trade
    already filled under its key, without a lock; challenges not found (or not the owner's)
    are absent.

    One statement, so one snapshot: each row's `version` says which state its positions
    belong to, and `write_changes` writes a change only if that version is still current.
    """
    records = await c.fetch(
        f"SELECT {CHALLENGE_COLUMNS}, "
        "ARRAY(SELECT p FROM positions p WHERE p.challenge_id = k.cid ORDER BY p.symbol) AS positions, "
        "(SELECT t FROM trades t WHERE t.challenge_id = k.cid AND t.idempotency_key = k.key) AS seen "
        "FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(cid, owner, key) "
        "JOIN challenges ON challenges.id = k.cid AND challenges.user_id = k.owner",
        [w[0] for w in wanted],
        [w[1] for w in wanted],
        [w[2] for w in wanted],
    )
    found = {}
    for r in records:
        row = _challenge(r)
        assert row is not None
        found[row["id"]] = (row, list(row.pop("positions")), row.pop("seen"))
    return found


# The live challenges of the partitions $2 (partition = the id's last byte mod $1, as partition_of).
_LIVE_SHARE = "status IN ('ACTIVE', 'PAUSED') AND get_byte(uuid_send(id), 15) % $1 = ANY($2::int[])"


async def live_share_ids(c: asyncpg.Connection, partitions: int, wanted: list[int]) -> list[uuid.UUID]:
    """The ids of the live challenges of the partitions `wanted`, in id order."""
    rows = await c.fetch(f"SELECT id FROM challenges WHERE {_LIVE_SHARE} ORDER BY id", partitions, wanted)
    return [r["id"] for r in rows]


async def live_share(
    c: asyncpg.Connection, partitions: int, wanted: list[int], batch: int
) -> AsyncIterator[list[tuple[dict[str, Any], list[asyncpg.Record]]]]:
    """The live challenges of the partitions `wanted` (partition = the id's last byte mod
    `partitions`, as partition_of), each with its positions, `batch` at a time, without a lock:
    one statement through a cursor, so one scan of the table and each row's positions those of
    its version."""
    async with c.transaction(readonly=True):  # a cursor lives in a transaction
        cur = await c.cursor(
            f"SELECT {CHALLENGE_COLUMNS}, "
            "ARRAY(SELECT p FROM positions p WHERE p.challenge_id = challenges.id ORDER BY p.symbol) AS positions "
            f"FROM challenges WHERE {_LIVE_SHARE}",
            partitions,
            wanted,
        )
        while records := await cur.fetch(batch):
            out = []
            for r in records:
                row = _challenge(r)
                assert row is not None
                out.append((row, list(row.pop("positions"))))
            yield out


# Every outbox writer takes this transaction-scoped lock before drawing sequence numbers, so
# commit order equals sequence order (see append_events).
OUTBOX_LOCK = 7245001

# One statement writes everything a batch of changes does, each change to its own challenge:
# fills, the positions they touched, the challenge rows and the outbox events. A challenge row
# is updated only at the version its change was computed from, and every other write joins the
# updated rows, so a stale change writes nothing at all while the others apply (one statement:
# atomic even outside a transaction block). Nor does a change whose order's idempotency key a
# trade already holds (a retry computed on a cached state, see session_cache). The outbox's
# advisory lock is taken after *every* row update (count(*) drains `ch`): a row lock awaited
# while holding it could deadlock with a locked transaction that holds that row and waits for
# the advisory lock. Events are drawn sequence numbers in their given order. The rows are
# locked first, in id order (`locked`), as by every multi-row writer: left to the UPDATE, the
# order would be the plan's (a hash join reads the table's physical order), and two writers of
# the same challenges (an order batch and a judgement, two replicas' batches) could deadlock,
# which PostgreSQL only breaks after deadlock_timeout (1 s).
_WRITE = f"""
WITH
 locked AS (
  SELECT c.id FROM challenges c WHERE c.id = ANY($2::uuid[]) ORDER BY c.id FOR UPDATE),
 ch AS (
  UPDATE challenges c SET account = v.account::jsonb, status = v.status, balance = v.balance, equity = v.equity,
     updated_at = $1, failure_reason = v.failure_reason, ended_at = v.ended_at, last_trade_at = v.last_trade_at,
     total_trades = v.total_trades, winning_trades = v.winning_trades, losing_trades = v.losing_trades,
     realized_pnl = v.realized_pnl, started_at = v.started_at, version = c.version + 1
  FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::text[],
              $9::timestamptz[], $10::timestamptz[], $11::int[], $12::int[], $13::int[], $14::numeric[],
              $15::timestamptz[], $39::text[])
       AS v(id, version, account, status, balance, equity, failure_reason, ended_at, last_trade_at, total_trades,
            winning_trades, losing_trades, realized_pnl, started_at, key)
  WHERE c.id = v.id AND c.version = v.version AND c.id IN (SELECT id FROM locked)
    AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.challenge_id = v.id AND t.idempotency_key = v.key)
  RETURNING c.id),
 tr AS (
  INSERT INTO trades (id, challenge_id, user_id, symbol, side, quantity, price, commission, realized_pnl,
                      reason, idempotency_key, note, tags, executed_at)
  SELECT u.id, u.cid, u.uid, u.symbol, u.side, u.quantity, u.price, u.commission, u.realized_pnl, u.reason, u.key,
         u.note, ARRAY(SELECT jsonb_array_elements_text(u.tags)), $1
  FROM unnest($16::uuid[], $17::uuid[], $18::uuid[], $19::text[], $20::text[], $21::numeric[], $22::numeric[],
              $23::numeric[], $24::numeric[], $25::text[], $26::text[], $27::text[], $28::text[]::jsonb[])
       AS u(id, cid, uid, symbol, side, quantity, price, commission, realized_pnl, reason, key, note, tags)
  JOIN ch ON ch.id = u.cid),
 pos AS (
  INSERT INTO positions (challenge_id, symbol, quantity, avg_price, stop_loss, take_profit, updated_at, opened_at)
  SELECT p.cid, p.symbol, p.quantity, p.avg_price, p.sl, p.tp, $1, CASE WHEN p.quantity <> 0 THEN $1 END
  FROM unnest($29::uuid[], $30::text[], $31::numeric[], $32::numeric[], $33::numeric[], $34::numeric[])
       AS p(cid, symbol, quantity, avg_price, sl, tp)
  JOIN ch ON ch.id = p.cid
  ON CONFLICT (challenge_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity, avg_price = EXCLUDED.avg_price,
     stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, updated_at = EXCLUDED.updated_at,
     -- opened when it leaves flat or reverses; kept while it grows or shrinks; none when flat
     opened_at = CASE WHEN EXCLUDED.quantity = 0 THEN NULL
                      WHEN positions.quantity = 0 OR sign(positions.quantity) <> sign(EXCLUDED.quantity)
                        OR positions.opened_at IS NULL THEN EXCLUDED.updated_at
                      ELSE positions.opened_at END),
 lk AS (
  SELECT pg_advisory_xact_lock({OUTBOX_LOCK}) FROM (SELECT count(*) AS n FROM ch) AS done
  WHERE done.n > 0 AND cardinality($37::text[]) > 0),
 ev AS (
  INSERT INTO events (challenge_id, user_id, type, payload, occurred_at)
  SELECT e.cid, e.uid, e.type, e.payload, $1
  FROM lk, unnest($35::uuid[], $36::uuid[], $37::text[], $38::text[]::jsonb[]) WITH ORDINALITY
       AS e(cid, uid, type, payload, n)
  JOIN ch ON ch.id = e.cid
  ORDER BY e.n
  RETURNING challenge_id, sequence)
SELECT ch.id, (SELECT max(ev.sequence) FROM ev WHERE ev.challenge_id = ch.id) AS last FROM ch
"""


@dataclass
class Change:
    """What one action did to one challenge, ready to write (see _WRITE)."""

    challenge_id: uuid.UUID
    user_id: uuid.UUID
    version: int  # the version the change was computed from
    challenge: dict[str, Any]  # the row's new values
    trades: list[dict[str, Any]] = field(default_factory=list)
    positions: list[tuple[str, Decimal, Decimal, Decimal | None, Decimal | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


async def write_changes(c: asyncpg.Connection, now: datetime, changes: list[Change]) -> dict[uuid.UUID, int | None]:
    """The changes that applied (their challenge was still at the version they were computed
    from, and no trade held their order's key), each with the last outbox sequence it wrote
    (None without events)."""
    trades = [(ch, t) for ch in changes for t in ch.trades]
    positions = [(ch, p) for ch in changes for p in ch.positions]
    events = [(ch, e) for ch in changes for e in ch.events]

    def col(key: str) -> list[Any]:
        return [ch.challenge[key] for ch in changes]

    def trade(key: str) -> list[Any]:
        return [t[key] for _, t in trades]

    def position(i: int) -> list[Any]:
        return [p[i] for _, p in positions]

    records = await c.fetch(
        _WRITE,
        now,
        [ch.challenge_id for ch in changes],
        [ch.version for ch in changes],
        [json.dumps(a) for a in col("account")],
        col("status"),
        col("balance"),
        col("equity"),
        col("failure_reason"),
        col("ended_at"),
        col("last_trade_at"),
        col("total_trades"),
        col("winning_trades"),
        col("losing_trades"),
        col("realized_pnl"),
        col("started_at"),
        trade("id"),
        [ch.challenge_id for ch, _ in trades],
        [ch.user_id for ch, _ in trades],
        trade("symbol"),
        trade("side"),
        trade("quantity"),
        trade("price"),
        trade("commission"),
        trade("realized_pnl"),
        trade("reason"),
        trade("idempotency_key"),
        trade("note"),
        [json.dumps(t["tags"]) for _, t in trades],
        [ch.challenge_id for ch, _ in positions],
        *(position(i) for i in range(5)),
        [ch.challenge_id for ch, _ in events],
        [ch.user_id for ch, _ in events],
        [e.type for _, e in events],
        [json.dumps(e.payload(), default=str) for _, e in events],
        [next((t["idempotency_key"] for t in ch.trades if t["idempotency_key"]), None) for ch in changes],
    )
    return {r["id"]: r["last"] for r in records}


async def insert_breaches(c: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await c.executemany(
            "INSERT INTO breaches (id, challenge_id, rule, hard, parameters, observed, occurred_at) "
            "VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7)",
            [
                (
                    v["id"],
                    v["challenge_id"],
                    v["rule"],
                    v["hard"],
                    json.dumps(v["parameters"], default=str),
                    json.dumps(v["observed"], default=str),
                    v["occurred_at"],
                )
                for v in rows
            ],
        )


async def save_snapshots(c: asyncpg.Connection, rows: list[tuple[uuid.UUID, date, Decimal, Decimal]]) -> None:
    """Day-start snapshots (challenge, trading day, balance, equity); a day already recorded stays."""
    if rows:
        await c.executemany(
            "INSERT INTO daily_snapshots (challenge_id, trading_day, start_balance, start_equity) "
            "VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
            rows,
        )


async def append_events(
    c: asyncpg.Connection, rows: Sequence[tuple[uuid.UUID, uuid.UUID, Event]], live_only: bool = False
) -> int | None:
    """Outbox rows (challenge, owner, event) in the caller's transaction; the advisory lock
    makes commit order equal sequence order, so a reader following `sequence > cursor` never
    skips a late commit.

    `live_only` writes only the events of challenges still ACTIVE or PAUSED as committed once
    the lock is held: an informational event computed before a breach (the throttled
    `equity_updated`) then either precedes the breach's events or is not written at all.
    """
    if not rows:
        return None
    await c.execute("SELECT pg_advisory_xact_lock($1)", OUTBOX_LOCK)
    live = (
        " WHERE EXISTS (SELECT 1 FROM challenges ch WHERE ch.id = u.cid AND ch.status IN ('ACTIVE', 'PAUSED'))"
        if live_only
        else ""
    )
    return await c.fetchval(
        "WITH ins AS (INSERT INTO events (challenge_id, user_id, type, payload, occurred_at) "
        "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]::jsonb[], $5::timestamptz[]) "
        f"AS u(cid, uid, type, payload, at){live} RETURNING sequence) SELECT max(sequence) FROM ins",
        [cid for cid, _, _ in rows],
        [uid for _, uid, _ in rows],
        [e.type for _, _, e in rows],
        [json.dumps(e.payload(), default=str) for _, _, e in rows],
        [e.time for _, _, e in rows],
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


async def live_challenges_locked(conn: asyncpg.Connection, user_id: uuid.UUID) -> int:
    """The trader's ACTIVE or PAUSED challenges, counted under a lock of the trader's own that
    lasts until commit (starts of one trader queue here)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"live:{user_id}")
    live = await conn.fetchval(
        "SELECT count(*) FROM challenges WHERE user_id = $1 AND status IN ('ACTIVE', 'PAUSED')", user_id
    )
    return int(live)
