"""What a session's events change, as rows: the challenge's new values, its trades and
positions, breach rows, day snapshots, the next phase a pass opens and the outbox events —
written in the caller's transaction by `ledger_sql`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy.engine import RowMapping

from services.challenges import ledger_sql as sql
from services.challenges.commits import Commits
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.events import Breached, DayRolled, Event, StatusChanged, TradeExecuted
from services.challenges.domain.positions import Position
from services.challenges.domain.rulepacks import RulePack, Rules
from services.challenges.domain.session import Session, Stops
from services.challenges.session_cache import SessionCache
from services.common.errors import failed_precondition

Row = Mapping[Any, Any]  # a challenge row: SQLAlchemy's RowMapping or the hot path's dict
Work = tuple[Row, Session, list[Event], dict[str, Any]]  # (row read, session acted on, its events, order extras)

TRADES = Counter("challenges_trades_total", "Fills executed.", ("reason",))
BREACHES = Counter("challenges_breaches_total", "Rule breaches recorded.", ("rule", "hard"))
TRANSITIONS = Counter("challenges_status_changes_total", "Challenge status transitions.", ("to",))


class StaleChallenge(Exception):
    """The challenge changed after its state was read: the change was not written."""


def new_challenge_values(
    user_id: uuid.UUID,
    plan: RowMapping,
    rules: Rules,
    key: str | None,
    now: datetime,
    parent_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    account = Account.new(rules.initial_balance)
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "plan_id": plan["id"],
        "phase": plan["phase"],
        "status": engine.PENDING,
        "rules": json.loads(rules.to_json()),
        "account": account.to_json(),
        "initial_balance": rules.initial_balance,
        "balance": rules.initial_balance,
        "equity": rules.initial_balance,
        "currency": plan["currency"],
        "idempotency_key": key,
        "parent_id": parent_id,
        "failure_reason": "",
        "total_trades": 0,
        "winning_trades": 0,
        "losing_trades": 0,
        "realized_pnl": Decimal(0),
        "created_at": now,
        "updated_at": now,
    }


def change_of(row: Row, s: Session, events: list[Event], now: datetime, extra: Mapping[str, Any]) -> sql.Change:
    """The rows `events` change, except what needs statements of its own (see `Changes.persist`)."""
    cid = row["id"]
    a = s.account
    values: dict[str, Any] = {
        "account": a.to_json(),
        "status": a.status,
        "balance": a.balance,
        "equity": a.equity,
        "failure_reason": row["failure_reason"],
        "ended_at": row["ended_at"],
        "last_trade_at": row["last_trade_at"],
        "total_trades": row["total_trades"],
        "winning_trades": row["winning_trades"],
        "losing_trades": row["losing_trades"],
        "realized_pnl": row["realized_pnl"],
        "started_at": row["started_at"],
    }
    change = sql.Change(cid, row["user_id"], row["version"], values)
    wins = losses = 0
    realized = Decimal(0)
    touched: set[str] = set()
    for e in events:
        if isinstance(e, TradeExecuted):
            is_order = e.reason in ("order", "close") and not change.trades
            trade = {
                "id": uuid.uuid4(),
                "challenge_id": cid,
                "user_id": row["user_id"],
                "symbol": e.symbol,
                "side": e.side,
                "quantity": e.quantity,
                "price": e.price,
                "commission": e.commission,
                "realized_pnl": e.realized_pnl,
                "reason": e.reason,
                "executed_at": now,
                "idempotency_key": extra.get("idempotency_key") if is_order else None,
                "note": extra.get("note", "") if is_order else "",
                "tags": list(extra.get("tags", [])) if is_order else [],
            }
            change.trades.append(trade)
            e.trade_id = str(trade["id"])
            realized += e.realized_pnl
            wins += e.realized_pnl > 0
            losses += e.realized_pnl < 0
            touched.add(e.symbol)
        elif isinstance(e, Breached) and e.hard:
            values["failure_reason"] = e.reason
        elif isinstance(e, StatusChanged) and e.to in engine.ENDED:
            values["ended_at"] = now
        change.events.append(e)
    if row["status"] == engine.PENDING and a.status == engine.ACTIVE:
        values["started_at"] = now
    if change.trades:
        values.update(
            last_trade_at=now,
            total_trades=row["total_trades"] + len(change.trades),
            winning_trades=row["winning_trades"] + wins,
            losing_trades=row["losing_trades"] + losses,
            realized_pnl=row["realized_pnl"] + realized,
        )
    for sym in sorted(touched | set(s.stops)):
        p = s.positions.get(sym, Position(sym, Decimal(0), Decimal(0)))
        st = s.stops.get(sym, Stops())
        change.positions.append((sym, p.quantity, p.avg_price, st.stop_loss, st.take_profit))
    return change


class Changes:
    """Writes what sessions did, and counts it once committed."""

    def __init__(self, commits: Commits, sessions: SessionCache) -> None:
        self.commits = commits
        self.sessions = sessions

    async def persist(self, conn: Any, work: list[Work], now: datetime) -> list[tuple[sql.Change, int | None]]:
        """Write what each (row, session, events, extra) did, in the caller's transaction (the
        rows are locked); each change with its last outbox sequence, for `written` once the
        transaction commits."""
        changes, breaches, snapshots = [], [], []
        for row, s, events, extra in work:
            for e in events:
                if isinstance(e, Breached):
                    breaches.append(
                        {
                            "id": uuid.uuid4(),
                            "challenge_id": row["id"],
                            "rule": e.rule,
                            "hard": e.hard,
                            "parameters": e.parameters,
                            "observed": e.observed,
                            "occurred_at": now,
                        }
                    )
                elif isinstance(e, DayRolled):
                    snapshots.append((row["id"], e.trading_day, e.day_start_balance, e.day_start_equity))
                elif isinstance(e, StatusChanged) and e.to == engine.PASSED and s.rules.next_plan:
                    e.next_challenge_id = str(await self._open_next_phase(conn, row, s, now))
            changes.append(change_of(row, s, events, now, extra))
        await sql.insert_breaches(conn, breaches)
        await sql.save_snapshots(conn, snapshots)
        applied = await sql.write_changes(conn, now, changes)
        written = []
        for change in changes:
            if change.challenge_id not in applied:
                raise StaleChallenge()
            self.sessions.drop(change.challenge_id)  # its next order reads the state this writes
            written.append((change, applied[change.challenge_id]))
        return written

    def written(self, change: sql.Change, last: int | None) -> None:
        """Count what a change did, once it is committed (an optimistic one may not be)."""
        for e in change.events:
            if isinstance(e, TradeExecuted):
                TRADES.labels(e.reason).inc()
            elif isinstance(e, Breached):
                BREACHES.labels(e.rule, str(e.hard).lower()).inc()
            elif isinstance(e, StatusChanged):
                TRANSITIONS.labels(e.to).inc()
        self.commits.wrote(change.challenge_id, last)

    async def _open_next_phase(self, conn: Any, row: Row, s: Session, now: datetime) -> uuid.UUID:
        plan = await sql.plan(conn, s.rules.next_plan or "")
        if plan is None:
            raise failed_precondition("next phase plan missing", "PLAN_NOT_FOUND")
        definition = await sql.pack_definition(conn, plan["rule_pack"], plan["rule_pack_version"])
        assert definition is not None
        rules = RulePack.from_dict(definition).rules_for(plan["phase"], s.rules.initial_balance)
        child = await sql.insert_challenge(
            conn, new_challenge_values(row["user_id"], plan, rules, None, now, parent_id=row["id"])
        )
        assert child is not None  # no idempotency key: nothing to conflict on
        return uuid.UUID(str(child["id"]))
