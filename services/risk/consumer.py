"""Consumer of the challenges event feed.

Each event is applied in one transaction together with the cursor, in risk's schema:
after a crash or restart of either side it resumes at the stored cursor, and an event
seen twice changes nothing (fills are keyed by the event's sequence, alerts by their
dedup key, and the cursor only moves forward).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc

from services.common.clients import ServiceIdentity
from services.common.db import driver
from services.risk.domain import alerts as alert_rules
from services.risk.domain.scoring import AccountView, score

log = structlog.get_logger("consumer")

CONSUMER = "challenges-events"
APPLIED = Counter("risk_events_applied_total", "Challenge events applied.", ("type",))
LAG = Gauge("risk_consumer_last_sequence", "Last challenges event sequence applied.")
ALERTS = Counter("risk_alerts_total", "Alerts raised.", ("kind",))


def _view(st: asyncpg.Record) -> AccountView:
    return AccountView(
        initial_balance=st["initial_balance"],
        daily_loss=st["daily_loss"],
        max_loss=st["max_loss"],
        profit_target=st["profit_target"],
        balance=st["balance"],
        equity=st["equity"],
        day_start=st["day_start"],
        # jsonb arrives decoded (the pool's codec); accept text too.
        exposure={
            k: Decimal(v)
            for k, v in (st["exposure"] if isinstance(st["exposure"], dict) else json.loads(st["exposure"])).items()
        },
        losing_streak=st["losing_streak"],
        trades_today=st["trades_today"],
        daily_floor=st["daily_floor"],
        max_floor=st["max_floor"],
    )


def _dec(v: Any) -> Decimal | None:
    return Decimal(v) if v not in (None, "", "None") else None


class Consumer:
    def __init__(self, db: AsyncEngine, channel: grpc.aio.Channel, identity: ServiceIdentity) -> None:
        self.db = db
        self.stub = challenges_pb2_grpc.ChallengesServiceStub(channel)
        self.identity = identity
        self.new_alerts = asyncio.Event()

    async def watch_inactivity(self, after: timedelta, every: float = 60.0) -> None:
        """Periodic scan: ACTIVE challenges whose last event is older than `after`."""
        while True:
            await asyncio.sleep(every)
            try:
                now = datetime.now(UTC)
                async with driver(self.db) as conn:
                    rows = await conn.fetch(
                        "SELECT challenge_id, user_id, last_event_at FROM challenge_state "
                        "WHERE status = 'ACTIVE' AND last_event_at < $1",
                        now - after,
                    )
                    for r in rows:
                        a = alert_rules.inactivity(str(r["challenge_id"]), r["last_event_at"], now, after)
                        if a is not None:
                            await self._insert_alert(conn, r["challenge_id"], r["user_id"], a, now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inactivity scan failed", error=str(exc)[:200])

    async def _insert_alert(
        self, conn: asyncpg.Connection, cid: uuid.UUID, uid: uuid.UUID, a: alert_rules.Alert, at: datetime
    ) -> None:
        r = await conn.execute(
            "INSERT INTO alerts (id, challenge_id, user_id, kind, severity, message, details, dedup_key, created_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8,$9) ON CONFLICT (dedup_key) DO NOTHING",
            uuid.uuid4(),
            cid,
            uid,
            a.kind,
            a.severity,
            a.message,
            json.dumps(a.details),
            a.dedup_key,
            at,
        )
        if r.endswith(" 1"):
            ALERTS.labels(a.kind).inc()
            self.new_alerts.set()
            self.new_alerts = asyncio.Event()

    async def cursor(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT last_sequence FROM consumer_cursors WHERE consumer = $1", CONSUMER) or 0)

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with driver(self.db) as conn:
                    after = await self.cursor(conn)
                    call = self.stub.WatchEvents(
                        challenges_pb2.WatchEventsRequest(after_sequence=after), metadata=await self.identity.metadata()
                    )
                    async for event in call:
                        await self.apply(conn, event)
                        delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event feed interrupted", error=str(exc)[:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def apply(self, conn: asyncpg.Connection, e: challenges_pb2.Event) -> None:
        payload = json.loads(e.payload_json)
        cid, uid = uuid.UUID(e.challenge_id), uuid.UUID(e.user_id)
        at = e.occurred_at.ToDatetime(UTC)
        async with conn.transaction():
            cursor = await conn.fetchval(
                "SELECT last_sequence FROM consumer_cursors WHERE consumer = $1 FOR UPDATE", CONSUMER
            )
            if cursor is not None and e.sequence <= cursor:
                return  # already applied (a replay after a crash): nothing changes
            await self._apply(conn, e.type, payload, cid, uid, at, e.sequence)
            await conn.execute(
                "INSERT INTO consumer_cursors (consumer, last_sequence, updated_at) VALUES ($1, $2, now()) "
                "ON CONFLICT (consumer) DO UPDATE SET last_sequence = EXCLUDED.last_sequence, updated_at = now()",
                CONSUMER,
                e.sequence,
            )
        APPLIED.labels(e.type).inc()
        LAG.set(e.sequence)

    async def _apply(
        self,
        conn: asyncpg.Connection,
        kind: str,
        p: dict[str, Any],
        cid: uuid.UUID,
        uid: uuid.UUID,
        at: datetime,
        seq: int,
    ) -> None:
        if kind == "status_changed" and p.get("reason") == "created":
            initial = Decimal(p["initial_balance"])
            await conn.execute(
                "INSERT INTO challenge_state (challenge_id, user_id, initial_balance, daily_loss, max_loss, "
                "profit_target, status, balance, equity, day_start, peak, last_event_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$3,$3,$3,$3,$8) ON CONFLICT DO NOTHING",
                cid,
                uid,
                initial,
                _dec(p.get("daily_loss")),
                _dec(p.get("max_loss")),
                _dec(p.get("profit_target")),
                p["to"],
                at,
            )
            return
        st = await conn.fetchrow("SELECT * FROM challenge_state WHERE challenge_id = $1 FOR UPDATE", cid)
        if st is None:
            return  # a challenge created before this consumer existed: nothing to judge it by
        view = _view(st)
        status, streak, trades_today, day = st["status"], st["losing_streak"], st["trades_today"], st["trading_day"]
        if kind == "trade_executed":
            pnl = Decimal(p["realized_pnl"]) - Decimal(p["commission"])
            closing = Decimal(p["realized_pnl"]) != 0
            await conn.execute(
                "INSERT INTO fills (sequence, challenge_id, user_id, symbol, closing, pnl, notional, executed_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
                seq,
                cid,
                uid,
                p["symbol"],
                closing,
                pnl,
                Decimal(p.get("notional", "0")),
                at,
            )
            view.balance, view.equity = Decimal(p["balance"]), Decimal(p["equity"])
            view.exposure[p["symbol"]] = Decimal(p.get("notional", "0"))
            view.exposure = {k: v for k, v in view.exposure.items() if v}
            if closing:
                streak = streak + 1 if pnl < 0 else 0
            trades_today += 1
            view.losing_streak, view.trades_today = streak, trades_today
        elif kind == "equity_updated":  # floating P&L between fills
            view.equity = Decimal(p["equity"])
        elif kind == "day_rolled":
            view.day_start = Decimal(p["day_start_equity"])
            day, trades_today = p["trading_day"], 0
            view.trades_today = 0
        elif kind == "status_changed":
            status = p["to"]
        if isinstance(p.get("limits"), dict):
            view.report(p["limits"])
        if not day:
            day = at.date().isoformat()
        await conn.execute(
            "UPDATE challenge_state SET status = $2, balance = $3, equity = $4, day_start = $5, "
            "peak = GREATEST(peak, $4), exposure = $6::jsonb, losing_streak = $7, trades_today = $8, "
            "trading_day = $9, last_event_at = $10, daily_loss = $11, max_loss = $12, daily_floor = $13, "
            "max_floor = $14 WHERE challenge_id = $1",
            cid,
            status,
            view.balance,
            view.equity,
            view.day_start,
            json.dumps({k: str(v) for k, v in view.exposure.items()}),
            streak,
            trades_today,
            day,
            at,
            view.daily_loss,
            view.max_loss,
            view.daily_floor,
            view.max_floor,
        )
        value, factors = score(view, [])
        await conn.execute(
            "INSERT INTO risk_scores (challenge_id, user_id, score, factors, computed_at) VALUES ($1,$2,$3,$4::jsonb,$5) "  # noqa: E501
            "ON CONFLICT (challenge_id) DO UPDATE SET score = EXCLUDED.score, factors = EXCLUDED.factors, "
            "computed_at = EXCLUDED.computed_at",
            cid,
            uid,
            value,
            json.dumps({k: {"value": v, "explanation": x} for k, (v, x) in factors.items()}),
            at,
        )
        raised = alert_rules.evaluate(str(cid), view, day)
        if kind == "status_changed" and status == "FAILED":
            raised.append(
                alert_rules.Alert(
                    "challenge_failed",
                    "CRITICAL",
                    f"challenge failed: {p.get('reason')}",
                    {"reason": p.get("reason")},
                    f"{cid}:failed",
                )
            )
        for a in raised:
            await self._insert_alert(conn, cid, uid, a, at)
