"""The service layer: every change to a challenge, as one transaction.

Rebuild the challenge's Session from the stored state and the current quotes, let the pure
engine act, then persist the new state, positions, trades, breaches, snapshots and outbox
events together. Orders are written optimistically (the write applies only at the version
the order was computed from, see `_order`); everything else locks the row first. Either way
only a change computed from the challenge's latest committed state is written, so concurrent
orders never corrupt a balance and nothing is accepted after a failure: a FAILED status
committed in between makes the order's write a no-op, and its recomputation is refused.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import ChainMap
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg
import grpc
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges import store
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.positions import Position, conversion_symbol
from services.challenges.domain.rulepacks import RulePack, Rules
from services.challenges.domain.session import OrderRejected, Quote, Session, Stops
from services.challenges.order_batch import OrderBatcher, PendingOrder
from services.challenges.prices import MarketView
from services.challenges.session_cache import SessionCache
from services.common.db import driver, driver_connection
from services.common.errors import ServiceError, failed_precondition, invalid_argument, not_found, refused_value

log = structlog.get_logger("ledger")

Row = Mapping[Any, Any]  # a challenge row: SQLAlchemy's RowMapping or the hot path's dict

TRADES = Counter("challenges_trades_total", "Fills executed.", ("reason",))
BREACHES = Counter("challenges_breaches_total", "Rule breaches recorded.", ("rule", "hard"))
ACTIVE_CHALLENGES = Gauge("challenges_active", "Challenges ACTIVE or PAUSED in this process's index.")
TRANSITIONS = Counter("challenges_status_changes_total", "Challenge status transitions.", ("to",))
LAST_EVENT = Gauge("challenges_events_last_sequence", "Highest outbox sequence this process has committed.")

ORDER_CONFLICTS = Counter(
    "challenges_order_conflicts_total",
    "Orders recomputed because the challenge changed (or the order's key was spent) after the state they used.",
)

# Events whose records need statements of their own (breach rows, day snapshots, the next
# phase): an order that causes one is applied under the row lock, in one transaction.
LOCKED_EVENTS = frozenset({"breach", "day_rolled", "status_changed"})
# Optimistic attempts before an order queues for the row lock instead.
OPTIMISTIC_TRIES = 3
# Attempts at a judgement that lost a deadlock (PostgreSQL aborts one side after a second).
JUDGE_TRIES = 3
# Challenges judged in one transaction at most (judge_many splits larger sets).
JUDGE_BATCH = 100
# Challenges whose built rules a process keeps (see _session).
RULES_CACHE = 100_000
# What a batch's write may fail with because of one of its changes (see _run_orders).
REFUSED_WRITE = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# What an optimistic attempt answers when the order must run under the row lock.
NEEDS_LOCK = object()

INVALID_ORDER = {"UNKNOWN_SYMBOL", "QUANTITY_OUT_OF_RANGE", "QUANTITY_STEP", "NO_POSITION"}


def _judgement(s: Session, symbol: str | None, now: datetime) -> list[dict[str, Any]]:
    """What the clock (a day roll, symbol None) or the last tick in `symbol` does to a session."""
    if symbol is None or symbol not in s.quotes:
        # The clock judges flat accounts too: a time limit or inactivity needs no position.
        return s._roll(now) + s._judge(now)
    q = s.quotes[symbol]
    return s.on_tick(symbol, q.bid, q.ask, now)


def order_error(exc: OrderRejected) -> ServiceError:
    if exc.reason == "UNKNOWN_SYMBOL":
        return not_found("symbol", reason="UNKNOWN_SYMBOL")
    if exc.reason in INVALID_ORDER and exc.field:
        return ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            exc.message,
            reason=exc.reason,
            field_violations={exc.field: exc.message},
        )
    return failed_precondition(exc.message, exc.reason)


class StaleChallenge(Exception):
    """The challenge changed after its state was read: the change was not written."""


class Ledger:
    def __init__(
        self,
        db: AsyncEngine,
        market: MarketView,
        index: MarkIndex,
        max_quote_age: float = 2.0,
        always_ask_market: bool = False,
        owns: Callable[[uuid.UUID], bool] = lambda cid: True,
        order_writers: int = 1,
        order_linger: float = 0.0,
        session_cache: int = 10_000,
        max_pending: int = 10,
    ) -> None:
        # Challenges a trader may hold unstarted (PENDING): creating one is free and each
        # carries a balance, so without a cap one trader opened 60 $200k accounts in 0.3 s.
        self.max_pending = max_pending
        self.always_ask_market = always_ask_market
        # Whether this replica judges a challenge (its partition is leased here).
        self.owns = owns
        # The last outbox sequence this process committed per challenge: the outbox
        # follower skips what it already knows.
        self.local_seq: dict[uuid.UUID, int] = {}
        self.db = db
        self.market = market
        self.index = index
        self.max_quote_age = max_quote_age
        self.new_events = asyncio.Event()
        # When the clock must judge each live challenge next (a reset, a flat time, a deadline).
        self.clock_due: dict[uuid.UUID, datetime] = {}
        self.owner: dict[uuid.UUID, uuid.UUID] = {}
        self.indexed_version: dict[uuid.UUID, int] = {}
        self.orders = OrderBatcher(self._run_orders, workers=order_writers, linger=order_linger)
        self.sessions = SessionCache(session_cache)
        self._rules: dict[uuid.UUID, Rules] = {}

    # --- the transaction ---------------------------------------------------------------------

    async def transact(
        self,
        cid: uuid.UUID,
        user_id: uuid.UUID | None,
        action: Callable[[Session, Row], list[dict[str, Any]]],
        *,
        now: datetime | None = None,
        extra: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> tuple[Row, Session | None, list[dict[str, Any]], list[Any]]:
        """Lock the challenge, run `action` on its session, write what changed, commit.

        With an idempotency `key` already used on this challenge, nothing runs and the first
        trade comes back as the only trade row (the session is None then).
        """
        async with self.db.connect() as sa_conn:
            # The pool's own asyncpg connection: see ledger_sql for why the hot path skips Core.
            conn = await driver_connection(sa_conn)
            async with conn.transaction():
                row = await sql.lock_challenge(conn, cid, user_id)
                if row is None:
                    raise not_found("challenge")
                # Stamped under the lock, so fills' times follow the order they were applied in.
                now = now or datetime.now(UTC)
                pos_rows, seen = await sql.positions_and_trade(conn, cid, key)
                if seen is not None:
                    return row, None, [], [seen]  # a retry: the first fill, never a second one
                session = self._session(row, pos_rows)
                try:
                    events = action(session, row)
                except OrderRejected as exc:
                    raise order_error(exc) from None
                if not events:
                    self.refresh_index(row["id"], row["user_id"], session, row["version"])
                    return row, session, events, []  # nothing changed: no write at all
                [(change, last)] = await self._persist(conn, [(row, session, events, extra or {})], now)
        self._written(change, last)
        self._after_commit(row, session)
        return row, session, events, change.trades

    def _session(self, row: Row, pos_rows: list[Any]) -> Session:
        # A challenge's rules never change once copied: built once per process (building them
        # validates every parameter, ~30 µs, which an order read would otherwise pay each time).
        rules = self._rules.get(row["id"])
        if rules is None:
            if len(self._rules) >= RULES_CACHE:
                self._rules.clear()
            rules = self._rules[row["id"]] = Rules.from_json(row["rules"])
        account = Account.from_json(row["account"])
        positions = {p["symbol"]: Position(p["symbol"], p["quantity"], p["avg_price"]) for p in pos_rows}
        stops = {
            p["symbol"]: Stops(p["stop_loss"], p["take_profit"])
            for p in pos_rows
            if p["stop_loss"] is not None or p["take_profit"] is not None
        }
        return Session(rules, account, self.market.specs, positions, stops, self._quotes())

    def _quotes(self) -> ChainMap[str, Quote]:
        # Reads fall through to the live quotes (no copy of every symbol per order); a tick the
        # session applies lands in the front map, never in the shared one.
        return ChainMap({}, cast(dict[str, Quote], self.market.quotes))

    async def _persist(
        self, conn: Any, work: list[tuple[Row, Session, list[dict[str, Any]], dict[str, Any]]], now: datetime
    ) -> list[tuple[sql.Change, int | None]]:
        """Write what each (row, session, events, extra) did, in the caller's transaction (the
        rows are locked); each change with its last outbox sequence, for `_written` once the
        transaction commits."""
        changes, breaches, snapshots = [], [], []
        for row, s, events, extra in work:
            for e in events:
                kind = e["type"]
                if kind == "breach":
                    breaches.append(
                        {
                            "id": uuid.uuid4(),
                            "challenge_id": row["id"],
                            "rule": e["rule"],
                            "hard": e["hard"],
                            "parameters": e["parameters"],
                            "observed": e["observed"],
                            "occurred_at": now,
                        }
                    )
                elif kind == "day_rolled":
                    snapshots.append(
                        (
                            row["id"],
                            date.fromisoformat(e["trading_day"]),
                            Decimal(e["day_start_balance"]),
                            Decimal(e["day_start_equity"]),
                        )
                    )
                elif kind == "status_changed" and e["to"] == engine.PASSED and s.rules.next_plan:
                    e["next_challenge_id"] = str(await self._open_next_phase(conn, row, s, now))
            changes.append(self._change(row, s, events, now, extra))
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

    def _change(
        self, row: Row, s: Session, events: list[dict[str, Any]], now: datetime, extra: dict[str, Any]
    ) -> sql.Change:
        """The rows `events` change, except what needs statements of its own (see _persist)."""
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
            kind = e["type"]
            if kind == "trade_executed":
                is_order = e["reason"] in ("order", "close") and not change.trades
                trade = {
                    "id": uuid.uuid4(),
                    "challenge_id": cid,
                    "user_id": row["user_id"],
                    "symbol": e["symbol"],
                    "side": e["side"],
                    "quantity": Decimal(e["quantity"]),
                    "price": Decimal(e["price"]),
                    "commission": Decimal(e["commission"]),
                    "realized_pnl": Decimal(e["realized_pnl"]),
                    "reason": e["reason"],
                    "executed_at": now,
                    "idempotency_key": extra.get("idempotency_key") if is_order else None,
                    "note": extra.get("note", "") if is_order else "",
                    "tags": list(extra.get("tags", [])) if is_order else [],
                }
                change.trades.append(trade)
                e["trade_id"] = str(trade["id"])
                pnl = trade["realized_pnl"]
                realized += pnl
                wins += pnl > 0
                losses += pnl < 0
                touched.add(e["symbol"])
            elif kind == "breach" and e["hard"]:
                values["failure_reason"] = e["reason"]
            elif kind == "status_changed" and e["to"] in engine.ENDED:
                values["ended_at"] = now
            change.events.append((kind, e))
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

    def _written(self, change: sql.Change, last: int | None) -> None:
        """Count what a change did, once it is committed (an optimistic one may not be)."""
        for kind, e in change.events:
            if kind == "trade_executed":
                TRADES.labels(e["reason"]).inc()
            elif kind == "breach":
                BREACHES.labels(e["rule"], str(e["hard"]).lower()).inc()
            elif kind == "status_changed":
                TRANSITIONS.labels(e["to"]).inc()
        if last is not None:
            LAST_EVENT.set(max(last, LAST_EVENT._value.get()))
            self.local_seq[change.challenge_id] = last

    async def _open_next_phase(self, conn: Any, row: Row, s: Session, now: datetime) -> uuid.UUID:
        plan = await sql.plan(conn, s.rules.next_plan or "")
        if plan is None:
            raise failed_precondition("next phase plan missing", "PLAN_NOT_FOUND")
        definition = await sql.pack_definition(conn, plan["rule_pack"], plan["rule_pack_version"])
        assert definition is not None
        rules = RulePack.from_dict(definition).rules_for(plan["phase"], s.rules.initial_balance)
        child = await sql.insert_challenge(
            conn, self._new_challenge_values(row["user_id"], plan, rules, None, now, parent_id=row["id"])
        )
        assert child is not None  # no idempotency key: nothing to conflict on
        return uuid.UUID(str(child["id"]))

    def _new_challenge_values(
        self,
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

    def events_committed(self) -> None:
        """Wake every stream waiting for outbox rows, and arm a fresh event for the next ones."""
        self.new_events.set()
        self.new_events = asyncio.Event()

    def _after_commit(self, row: Row, s: Session) -> None:
        self.events_committed()
        self.refresh_index(row["id"], row["user_id"], s, row["version"] + 1)

    # --- the mark index -------------------------------------------------------------------------

    def refresh_index(self, cid: uuid.UUID, uid: uuid.UUID, s: Session, version: int) -> None:
        # Orders commit without a lock held across the refresh: one that committed earlier
        # but resumes later must not overwrite a newer state.
        if version < self.indexed_version.get(cid, -1):
            return
        self.indexed_version[cid] = version
        a, r = s.account, s.rules
        if a.status not in (engine.ACTIVE, engine.PAUSED) or not self.owns(cid):
            self.indexed_version.pop(cid, None)
            self.index.remove(cid)
            self.clock_due.pop(cid, None)
            ACTIVE_CHALLENGES.set(len(self.clock_due))
            return
        self.owner[cid] = uid
        warn = engine.warning_level(a, r)
        trail = r.intraday_trail()  # a floor that moves with every tick's equity
        self.index.set_account(
            cid,
            balance=float(a.balance),
            floor=float(engine.equity_floor(a, r)),
            warn=float(warn) if warn is not None else -math.inf,
            peak=float(a.max_equity_ever),
            trailing=trail is not None,
            trail_loss=float(trail[0]) if trail is not None else 0.0,
            trail_lock=float(trail[1]) if trail is not None and trail[1] is not None else math.inf,
        )
        rows = []
        for sym, p in s.positions.items():
            if p.is_flat:
                continue
            try:
                rate = float(s.rate(sym))
            except OrderRejected:
                rate = 1.0
            st = s.stops.get(sym, Stops())
            rows.append(
                (
                    sym,
                    float(p.quantity),
                    float(p.avg_price),
                    float(s.specs[sym].contract_size) * rate,
                    float(st.stop_loss) if st.stop_loss is not None else math.nan,
                    float(st.take_profit) if st.take_profit is not None else math.nan,
                )
            )
        self.index.set_positions(cid, rows)
        if a.day is not None:
            self.clock_due[cid] = engine.next_instant(a, r, datetime.now(UTC))
        ACTIVE_CHALLENGES.set(len(self.clock_due))

    # --- use cases -----------------------------------------------------------------------------------

    async def create(self, user_id: uuid.UUID, plan_id: str, size: Decimal, key: str | None) -> Row:
        now = datetime.now(UTC)
        async with self.db.begin() as conn:
            if key:
                seen = await store.challenge_by_key(conn, user_id, key)
                if seen is not None:
                    if seen["plan_id"] != plan_id or seen["initial_balance"] != size:
                        raise ServiceError(
                            grpc.StatusCode.ALREADY_EXISTS,
                            "idempotency key already used for a different request",
                            reason="IDEMPOTENCY_KEY_REUSED",
                        )
                    return seen
            plan = await store.get_plan(conn, plan_id)
            if plan is None:
                raise not_found("plan", reason="PLAN_NOT_FOUND")
            # Creates of one trader queue here, so the count below cannot be raced past.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:u))"), {"u": f"pending:{user_id}"})
            if await store.pending_count(conn, user_id) >= self.max_pending:
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"at most {self.max_pending} challenges may wait to be started; start or cancel one first",
                    reason="TOO_MANY_PENDING_CHALLENGES",
                    metadata={"limit": str(self.max_pending)},
                )
            if size not in [Decimal(x) for x in plan["account_sizes"]]:
                raise invalid_argument(
                    {"account_size": "must be one of " + ", ".join(str(x) for x in plan["account_sizes"])}
                )
            pack = await store.get_pack(conn, plan["rule_pack"], plan["rule_pack_version"])
            if pack is None:
                raise failed_precondition("the plan's rule pack is missing", "RULE_PACK_NOT_FOUND")
            rules = pack.rules_for(plan["phase"], size)
            driver_conn = await driver_connection(conn)
            row: Row | None = await sql.insert_challenge(
                driver_conn, self._new_challenge_values(user_id, plan, rules, key, now)
            )
            if row is None:  # a concurrent retry with the same key won the insert
                row = await store.challenge_by_key(conn, user_id, key or "")
                assert row is not None
                return row
            # The one outbox writer (ledger_sql), on this transaction's own connection.
            await sql.append_events(
                driver_conn,
                [
                    {
                        "challenge_id": row["id"],
                        "user_id": user_id,
                        "type": "status_changed",
                        "payload": {
                            "type": "status_changed",
                            "time": now.isoformat(),
                            "from": None,
                            "to": engine.PENDING,
                            "reason": "created",
                            "plan_id": plan_id,
                            "phase": plan["phase"],
                            "initial_balance": str(rules.initial_balance),
                            "daily_loss": str(rules.limit("daily_loss") or ""),
                            "max_loss": str(rules.limit("max_loss") or ""),
                            "profit_target": str(rules.limit("profit_target") or ""),
                        },
                        "occurred_at": now,
                    }
                ],
            )
        self.events_committed()
        return row

    async def start(self, cid: uuid.UUID, user_id: uuid.UUID | None) -> RowMapping:
        def act(s: Session, row: Row) -> list[dict[str, Any]]:
            if s.account.status == engine.ACTIVE:
                return []  # starting twice is a no-op
            if s.account.status != engine.PENDING:
                raise OrderRejected("CHALLENGE_NOT_PENDING", f"challenge is {s.account.status}")
            now = datetime.now(UTC)
            engine.start(s.account, s.rules, now)
            return [
                {
                    "type": "status_changed",
                    "time": now.isoformat(),
                    "from": engine.PENDING,
                    "to": engine.ACTIVE,
                    "reason": "started",
                }
            ]

        await self.transact(cid, user_id, act)
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, None)
        assert row is not None
        return row

    async def _quotes_for(self, symbol: str, held: list[str]) -> None:
        """Fresh quotes for the order's symbol (and conversion) or a clear refusal."""
        if not self.market.specs:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, "market data is not loaded yet", reason="MARKET_UNAVAILABLE"
            )
        spec = self.market.specs.get(symbol)
        if spec is None:
            raise not_found("symbol", reason="UNKNOWN_SYMBOL")
        needed = [symbol]
        conv = conversion_symbol(spec.quote_currency)
        if conv is not None:
            needed.append(conv[0])
        for sym in needed:
            try:
                await self.market.fresh_quote(sym, self.max_quote_age, force=self.always_ask_market)
            except LookupError as exc:
                reason = str(exc.args[0])
                if sym != symbol and reason == "MARKET_CLOSED":
                    continue  # a conversion rate may come from a closed FX market's last price
                message = {
                    "MARKET_CLOSED": f"the {sym} market is closed",
                    "STALE_QUOTE": f"no fresh {sym} quote; try again",
                    "NO_QUOTE": f"no {sym} quote",
                }[reason]
                raise failed_precondition(message, reason, symbol=sym) from None

    async def place(
        self,
        cid: uuid.UUID,
        user_id: uuid.UUID,
        symbol: str,
        side: str,
        quantity: Decimal,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        key: str | None,
        note: str,
        tags: list[str],
    ) -> Row:
        await self._quotes_for(symbol, [])

        def act(s: Session, row: Row) -> list[dict[str, Any]]:
            return s.place(symbol, side, quantity, datetime.now(UTC), stop_loss, take_profit)

        return await self._order(cid, user_id, act, key, {"idempotency_key": key, "note": note, "tags": tags})

    async def _order(
        self,
        cid: uuid.UUID,
        user_id: uuid.UUID,
        act: Callable[[Session, Row], list[dict[str, Any]]],
        key: str | None,
        extra: dict[str, Any],
    ) -> Row:
        """One order, idempotent by key: a retry returns the first trade, never a second fill.

        Optimistic first, in a batch with other challenges' orders (`_run_orders`): take the
        challenge's state (cached from this process's last write, else read), act, and write
        only if the challenge is still at that version and no trade holds the key. A change
        made elsewhere (a breach, another replica) makes the write a no-op and the order is
        recomputed on a fresh read; after a few lost races, or when the order causes a
        breach, day roll or status change, it runs under the row lock instead. The write
        itself checks the key, so racing or repeated retries cannot fill twice.
        """
        for _ in range(OPTIMISTIC_TRIES):
            try:
                trade = await self.orders.submit(PendingOrder(cid, user_id, key, act, extra))
            except StaleChallenge:
                ORDER_CONFLICTS.inc()
                continue
            if trade is not NEEDS_LOCK:
                return cast(Row, trade)
            break
        _, _, _, trade_rows = await self.transact(cid, user_id, act, extra=extra, key=key)
        return trade_rows[0]

    async def _run_orders(self, batch: list[PendingOrder]) -> None:
        """A batch of orders on distinct challenges: one read (none for challenges whose
        last write was this process's), one write, no lock held.

        Each order is resolved with its trade (or its first trade, for a retried key), a
        refusal, NEEDS_LOCK, or StaleChallenge when its challenge changed after the state
        its order was computed on.
        """
        held = {o: self._cached_state(o) for o in batch}
        work: list[tuple[PendingOrder, Row, Session, sql.Change]] = []
        async with driver(self.db) as conn:
            unread = [(o.challenge_id, o.user_id, o.key) for o, h in held.items() if h is None]
            states = await sql.challenge_states(conn, unread) if unread else {}
            now = datetime.now(UTC)
            for order in batch:
                state = held[order] or self._read_state(order, states)
                if state is None:
                    continue  # resolved by the read: not found, or a retry's first fill
                row, session = state
                try:
                    events = order.act(session, row)
                except OrderRejected as exc:
                    order.fail(order_error(exc))
                    continue
                except Exception as exc:  # this order's bug is not the batch's
                    order.fail(exc)
                    continue
                if not events or any(e["type"] in LOCKED_EVENTS for e in events):
                    order.resolve(NEEDS_LOCK)
                    continue
                work.append((order, row, session, self._change(row, session, events, now, order.extra)))
            if not work:
                return
            try:
                applied = await sql.write_changes(conn, now, [change for *_, change in work])
            except asyncpg.DeadlockDetectedError:
                applied = {}  # with another replica's batch: nothing was written, all recompute
            except REFUSED_WRITE:
                # One change the database refuses (a value it cannot store, a key taken by a
                # racing retry) fails the statement for all: each is written again alone, so
                # only that order hears it and every other trader's order fills.
                applied = await self._write_one_by_one(conn, now, work)
        self.events_committed()
        for order, read, session, change in work:
            if change.challenge_id in applied:
                self._written(change, applied[change.challenge_id])
                written = {**read, **change.challenge, "version": read["version"] + 1}
                written.pop("rules", None)  # the session holds them
                self.sessions.put(change.challenge_id, written, session)
                self.refresh_index(read["id"], read["user_id"], session, written["version"])
                order.resolve(change.trades[0])
            else:
                order.fail(StaleChallenge())

    async def _write_one_by_one(
        self, conn: asyncpg.Connection, now: datetime, work: list[tuple[PendingOrder, Row, Session, sql.Change]]
    ) -> dict[uuid.UUID, int | None]:
        """Each change of a refused batch written alone: a change refused again fails its own
        order (a value the database cannot store is the caller's bad input, see
        errors.refused_value); one whose key a racing retry took writes nothing, so its order
        is recomputed and finds that retry's fill."""
        applied: dict[uuid.UUID, int | None] = {}
        for order, _, _, change in work:
            try:
                applied |= await sql.write_changes(conn, now, [change])
            except asyncpg.IntegrityConstraintViolationError:
                pass  # not applied: StaleChallenge below
            except asyncpg.DataError as exc:
                log.warning(
                    "order refused by the database", challenge_id=str(change.challenge_id), sqlstate=exc.sqlstate
                )
                order.fail(refused_value(exc))
        return applied

    def _cached_state(self, order: PendingOrder) -> tuple[Row, Session] | None:
        entry = self.sessions.take(order.challenge_id, order.user_id)
        if entry is None:
            return None
        row, session = entry
        session.quotes, session.specs = self._quotes(), self.market.specs  # today's, not the last order's
        return row, session

    def _read_state(self, order: PendingOrder, states: dict[uuid.UUID, Any]) -> tuple[Row, Session] | None:
        """The order's challenge as read, or None once the order is answered by the read."""
        state = states.get(order.challenge_id)
        if state is None:
            order.fail(not_found("challenge"))
            return None
        row, pos_rows, seen = state
        if seen is not None:
            order.resolve(seen)  # a retry: the first fill, never a second one
            return None
        try:
            return row, self._session(row, pos_rows)
        except Exception as exc:
            order.fail(exc)
            return None

    async def close(self, cid: uuid.UUID, user_id: uuid.UUID, symbol: str, key: str | None) -> Row:
        await self._quotes_for(symbol, [])
        return await self._order(
            cid, user_id, lambda s, row: s.close(symbol, datetime.now(UTC)), key, {"idempotency_key": key}
        )

    async def cancel(self, cid: uuid.UUID, reason: str) -> None:
        def act(s: Session, row: Row) -> list[dict[str, Any]]:
            if s.account.status in engine.ENDED:
                raise OrderRejected("CHALLENGE_ENDED", f"challenge is already {s.account.status}")
            now = datetime.now(UTC)
            events = s.flatten(now, "cancelled")
            old = s.account.status
            s.account.status = engine.CANCELLED
            return [
                *events,
                {
                    "type": "status_changed",
                    "time": now.isoformat(),
                    "from": old,
                    "to": engine.CANCELLED,
                    "reason": reason or "cancelled by an admin",
                },
            ]

        await self.transact(cid, None, act)

    def drop_partitions(self, lost: set[int]) -> None:
        from services.challenges.partitions import partition_of

        for cid in [c for c in list(self.clock_due) if partition_of(c) in lost]:
            self.clock_due.pop(cid, None)
        for cid in [c for c in list(self.index.slot_of) if isinstance(c, uuid.UUID) and partition_of(c) in lost]:
            self.indexed_version.pop(cid, None)
            self.index.remove(cid)

    async def follow_outbox(self, poll: float = 0.3) -> None:
        """Keep the index of our challenges current when another replica changes them
        (an order handled there): replay their outbox events since we started."""
        async with driver(self.db) as conn:
            cursor = int(await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM events"))
        while True:
            # A timer, not our own commits, paces this: what this replica commits is already
            # in its index, and waking per order cost a query per order.
            try:
                async with driver(self.db) as conn:
                    rows = await conn.fetch(
                        "SELECT sequence, challenge_id FROM events WHERE sequence > $1 ORDER BY sequence LIMIT 1000",
                        cursor,
                    )
                todo: set[uuid.UUID] = set()
                for r in rows:
                    cursor = r["sequence"]
                    cid = r["challenge_id"]
                    if self.owns(cid) and r["sequence"] > self.local_seq.get(cid, 0):
                        todo.add(cid)
                await self.judge_many(dict.fromkeys(todo))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox follow failed", error=str(exc)[:200])
            await asyncio.sleep(poll)

    async def judge(self, cid: uuid.UUID, symbol: str | None) -> None:
        """Mark-to-market (after a tick in `symbol`) or a day roll (None) for one challenge."""
        await self._judge_retrying({cid: symbol})

    async def judge_many(self, wanted: dict[uuid.UUID, str | None]) -> None:
        """Judge several challenges exactly (Decimal engine), up to JUDGE_BATCH in one
        transaction: one lock statement, one read of their positions, one write of everything
        they did.

        A big price move can put hundreds of challenges at a limit with one tick; judged one
        transaction each, they queued behind each other (bench.breach_latency). A batch that
        fails is judged again one challenge at a time, so one bad challenge holds back no
        other (its failure is logged; a lone challenge's failure is raised).
        """
        ids = sorted(wanted)
        for i in range(0, len(ids), JUDGE_BATCH):
            batch = {cid: wanted[cid] for cid in ids[i : i + JUDGE_BATCH]}
            try:
                await self._judge_retrying(batch)
            except Exception:
                if len(wanted) == 1:
                    raise
                for cid, symbol in batch.items():
                    try:
                        await self._judge_retrying({cid: symbol})
                    except Exception as exc:
                        log.error("judge failed", challenge_id=str(cid), error=str(exc)[:200])

    async def _judge_retrying(self, wanted: dict[uuid.UUID, str | None]) -> None:
        # Rows are locked in id order, the order every multi-row writer uses; a deadlock with
        # another replica's batch or an order's statement is retried.
        for attempt in range(JUDGE_TRIES):
            try:
                await self._judge_many(wanted)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == JUDGE_TRIES - 1:
                    raise

    async def _judge_many(self, wanted: dict[uuid.UUID, str | None]) -> None:
        now = datetime.now(UTC)
        work: list[tuple[Row, Session, list[dict[str, Any]], dict[str, Any]]] = []
        unchanged: list[tuple[Row, Session]] = []
        async with driver(self.db) as conn:
            async with conn.transaction():
                rows = await sql.lock_challenges(conn, sorted(wanted))
                held = await sql.positions_of(conn, [r["id"] for r in rows])
                for row in rows:
                    try:
                        s = self._session(row, held[row["id"]])
                        events = _judgement(s, wanted[row["id"]], now)
                    except Exception as exc:  # one challenge's bug is not the others'
                        log.error("judge failed", challenge_id=str(row["id"]), error=str(exc)[:200])
                        continue
                    if events:
                        work.append((row, s, events, {}))
                    else:
                        unchanged.append((row, s))
                written = await self._persist(conn, work, now) if work else []
        for (read, session, _, _), (change, last) in zip(work, written, strict=True):
            self._written(change, last)
            self.refresh_index(read["id"], read["user_id"], session, read["version"] + 1)
        if work:
            self.events_committed()
        for read, session in unchanged:
            self.refresh_index(read["id"], read["user_id"], session, read["version"])

    async def load_live(self, partitions: set[int] | None = None) -> int:
        """Index the live challenges of our partitions, catching up on missed day rolls."""
        from services.challenges.partitions import partition_of

        async with self.db.connect() as conn:
            rows = await store.live_challenges(conn)
        ids = [r["id"] for r in rows if partitions is None or partition_of(r["id"]) in partitions]
        try:
            await self.judge_many(dict.fromkeys(ids))
        except Exception as exc:  # the only one (several are judged one by one on failure)
            log.error("could not load challenge", challenge_id=str(ids[0]), error=str(exc)[:200])
        return len(ids)
