"""What a run of challenge events does to risk's tables, written in one transaction.

The challenges a batch touches are read once (locked), changed in memory event by event, and
written once: their state, one risk score each, the fills, the alerts (deduplicated by key, so
each is raised exactly once whatever replays), and each partition's cursor. One transaction per
event cost more CPU than the event itself (a read, three writes and a commit each); per batch,
a busy feed costs a few statements per hundred events.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from tradesense.challenges.v1 import challenges_pb2

from services.risk.domain import alerts as alert_rules
from services.risk.domain.scoring import AccountView, score


def _dec(v: Any) -> Decimal | None:
    return Decimal(v) if v not in (None, "", "None") else None


@dataclass
class State:
    """One challenge's row of `challenge_state`, as it is being changed."""

    challenge_id: uuid.UUID
    user_id: uuid.UUID
    view: AccountView
    status: str
    peak: Decimal
    trading_day: str
    last_event_at: datetime
    new: bool = False  # created in this batch: inserted, not updated

    def created_row(self) -> tuple[Any, ...]:
        v = self.view
        return (
            self.challenge_id,
            self.user_id,
            v.initial_balance,
            v.daily_loss,
            v.max_loss,
            v.profit_target,
            self.status,
            self.last_event_at,
        )

    def state_row(self) -> tuple[Any, ...]:
        v = self.view
        exposure = json.dumps({k: str(x) for k, x in v.exposure.items()})
        return (
            self.challenge_id,
            self.status,
            v.balance,
            v.equity,
            v.day_start,
            self.peak,
            exposure,
            v.losing_streak,
            v.trades_today,
            self.trading_day,
            self.last_event_at,
            v.daily_loss,
            v.max_loss,
            v.daily_floor,
            v.max_floor,
        )

    @classmethod
    def of(cls, st: asyncpg.Record) -> State:
        exposure = st["exposure"] if isinstance(st["exposure"], dict) else json.loads(st["exposure"])
        view = AccountView(
            initial_balance=st["initial_balance"],
            daily_loss=st["daily_loss"],
            max_loss=st["max_loss"],
            profit_target=st["profit_target"],
            balance=st["balance"],
            equity=st["equity"],
            day_start=st["day_start"],
            exposure={k: Decimal(v) for k, v in exposure.items()},
            losing_streak=st["losing_streak"],
            trades_today=st["trades_today"],
            daily_floor=st["daily_floor"],
            max_floor=st["max_floor"],
        )
        return cls(
            st["challenge_id"], st["user_id"], view, st["status"], st["peak"], st["trading_day"], st["last_event_at"]
        )


@dataclass
class Batch:
    """The changes of one run of events, applied to `states` in memory."""

    states: dict[uuid.UUID, State]
    fills: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[State, alert_rules.Alert, datetime]] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)

    def apply(self, e: challenges_pb2.OutboxEvent) -> None:
        p = json.loads(e.payload_json)
        cid = uuid.UUID(e.challenge_id)
        at = e.occurred_at.ToDatetime(UTC)
        if e.type == "status_changed" and p.get("reason") == "created":
            if cid not in self.states:
                initial = Decimal(p["initial_balance"])
                view = AccountView(
                    initial,
                    _dec(p.get("daily_loss")),
                    _dec(p.get("max_loss")),
                    _dec(p.get("profit_target")),
                    initial,
                    initial,
                    initial,
                )
                self.states[cid] = State(cid, uuid.UUID(e.user_id), view, p["to"], initial, "", at, new=True)
            return  # scored from its first change on
        st = self.states.get(cid)
        if st is None:
            return  # a challenge created before this consumer existed: nothing to judge it by
        view = st.view
        if e.type == "trade_executed":
            pnl = Decimal(p["realized_pnl"]) - Decimal(p["commission"])
            closing = Decimal(p["realized_pnl"]) != 0
            notional = Decimal(p.get("notional", "0"))
            self.fills.append((e.sequence, cid, st.user_id, p["symbol"], closing, pnl, notional, at))
            view.balance, view.equity = Decimal(p["balance"]), Decimal(p["equity"])
            view.exposure[p["symbol"]] = notional
            view.exposure = {k: v for k, v in view.exposure.items() if v}
            if closing:
                view.losing_streak = view.losing_streak + 1 if pnl < 0 else 0
            view.trades_today += 1
        elif e.type == "equity_updated":  # floating P&L between fills
            view.equity = Decimal(p["equity"])
        elif e.type == "day_rolled":
            view.day_start = Decimal(p["day_start_equity"])
            st.trading_day, view.trades_today = p["trading_day"], 0
        elif e.type == "status_changed":
            st.status = p["to"]
        if isinstance(p.get("limits"), dict):
            view.report(p["limits"])
        if not st.trading_day:
            st.trading_day = at.date().isoformat()
        st.peak = max(st.peak, view.equity)
        st.last_event_at = at
        self.touched.add(cid)
        for a in alert_rules.evaluate(str(cid), view, st.trading_day):
            self.alerts.append((st, a, at))
        if e.type == "status_changed" and st.status == "FAILED":
            failed = alert_rules.Alert(
                "challenge_failed",
                "CRITICAL",
                f"challenge failed: {p.get('reason')}",
                {"reason": p.get("reason")},
                f"{cid}:failed",
            )
            self.alerts.append((st, failed, at))


async def load(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, State]:
    rows = await conn.fetch(
        "SELECT * FROM challenge_state WHERE challenge_id = ANY($1::uuid[]) ORDER BY challenge_id FOR UPDATE", ids
    )
    return {r["challenge_id"]: State.of(r) for r in rows}


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, for one statement over unnest() (executemany runs one per row)."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


# One statement per table and batch: executemany executes its statement once per row on the
# server (and binds each row), which was most of the consumer's CPU and PostgreSQL's for it.
_CREATE = (
    "INSERT INTO challenge_state (challenge_id, user_id, initial_balance, daily_loss, max_loss, "
    "profit_target, status, balance, equity, day_start, peak, last_event_at) "
    "SELECT c, u, ib, dl, ml, pt, st, ib, ib, ib, ib, at FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], "
    "$4::numeric[], $5::numeric[], $6::numeric[], $7::text[], $8::timestamptz[]) AS v(c, u, ib, dl, ml, pt, st, at) "
    "ON CONFLICT DO NOTHING"
)
_FILLS = (
    "INSERT INTO fills (sequence, challenge_id, user_id, symbol, closing, pnl, notional, executed_at) "
    "SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::boolean[], $6::numeric[], "
    "$7::numeric[], $8::timestamptz[]) ON CONFLICT DO NOTHING"
)
_STATES = (
    "UPDATE challenge_state s SET status = v.status, balance = v.balance, equity = v.equity, "
    "day_start = v.day_start, peak = v.peak, exposure = v.exposure::jsonb, losing_streak = v.losing_streak, "
    "trades_today = v.trades_today, trading_day = v.trading_day, last_event_at = v.last_event_at, "
    "daily_loss = v.daily_loss, max_loss = v.max_loss, daily_floor = v.daily_floor, max_floor = v.max_floor "
    "FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::text[], "
    "$8::int[], $9::int[], $10::text[], $11::timestamptz[], $12::numeric[], $13::numeric[], $14::numeric[], "
    "$15::numeric[]) AS v(id, status, balance, equity, day_start, peak, exposure, losing_streak, trades_today, "
    "trading_day, last_event_at, daily_loss, max_loss, daily_floor, max_floor) WHERE s.challenge_id = v.id"
)
_SCORES = (
    "INSERT INTO risk_scores (challenge_id, user_id, score, factors, computed_at) "
    "SELECT c, u, sc, f::jsonb, at FROM unnest($1::uuid[], $2::uuid[], $3::float8[], $4::text[], "
    "$5::timestamptz[]) AS v(c, u, sc, f, at) ON CONFLICT (challenge_id) DO UPDATE SET score = EXCLUDED.score, "
    "factors = EXCLUDED.factors, computed_at = EXCLUDED.computed_at"
)


async def write(conn: asyncpg.Connection, b: Batch) -> list[alert_rules.Alert]:
    """Everything the batch changed; the alerts newly raised (a replayed one is not). The
    rows are locked already (load), each challenge once per batch."""
    created = [s for s in b.states.values() if s.new]
    changed = [b.states[c] for c in sorted(b.touched)]
    if created:
        await conn.execute(_CREATE, *_columns([s.created_row() for s in created], 8))
    if b.fills:
        await conn.execute(_FILLS, *_columns(b.fills, 8))
    if changed:
        await conn.execute(_STATES, *_columns([s.state_row() for s in changed], 15))
        scores = []
        for s in changed:  # one score per challenge per batch, from its state after the batch
            value, factors = score(s.view, [])
            explained = {k: {"value": v, "explanation": x} for k, (v, x) in factors.items()}
            scores.append((s.challenge_id, s.user_id, value, json.dumps(explained), s.last_event_at))
        await conn.execute(_SCORES, *_columns(scores, 5))
    raised = []
    for st, a, at in b.alerts:
        if await insert_alert(conn, st.challenge_id, st.user_id, a, at):
            raised.append(a)
    return raised


# Alerts are numbered as they are inserted; this lock, taken in the inserting statement and
# held to commit, makes commit order equal sequence order across replicas, so a stream that
# follows `sequence > cursor` never skips an alert that committed late.
ALERTS_LOCK = 7245002


async def insert_alert(
    conn: asyncpg.Connection, cid: uuid.UUID, uid: uuid.UUID, a: alert_rules.Alert, at: datetime
) -> bool:
    """Whether the alert is new (its dedup key not raised before)."""
    r = await conn.execute(
        "INSERT INTO alerts (id, challenge_id, user_id, kind, severity, message, details, dedup_key, created_at) "
        "SELECT $1,$2,$3,$4,$5,$6,$7::jsonb,$8,$9 FROM (SELECT pg_advisory_xact_lock($10)) AS ordered "
        "ON CONFLICT (dedup_key) DO NOTHING",
        uuid.uuid4(),
        cid,
        uid,
        a.kind,
        a.severity,
        a.message,
        json.dumps(a.details),
        a.dedup_key,
        at,
        ALERTS_LOCK,
    )
    return str(r).endswith(" 1")
