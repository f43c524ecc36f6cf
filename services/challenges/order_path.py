"""The order path: one order, idempotent by key, written optimistically in a batch with other
challenges' orders, and under the row lock only when it must be.

Optimistic first (`OrderBatcher` groups concurrent orders): take the challenge's state (cached
from this process's last write, else read), act, and write only if the challenge is still at
that version and no trade holds the key. A change made elsewhere (a breach, another replica)
makes the write a no-op and the order is recomputed on a fresh read; after a few lost races, or
when the order causes a breach, day roll or status change, it runs under the row lock instead.
The write itself checks the key, so racing or repeated retries cannot fill twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import grpc
import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges.changes import Changes, Row, StaleChallenge, change_of
from services.challenges.commits import Commits
from services.challenges.domain.events import Breached, DayRolled, Event, StatusChanged
from services.challenges.domain.positions import conversion_symbol
from services.challenges.domain.session import OrderRejected, Session
from services.challenges.index_sync import IndexSync
from services.challenges.order_batch import OrderBatcher, PendingOrder
from services.challenges.prices import MarketView
from services.challenges.session_cache import SessionCache
from services.challenges.states import States
from services.common.db import driver
from services.common.errors import ServiceError, failed_precondition, not_found, refused_value

log = structlog.get_logger("orders")

Action = Callable[[Session, Row], list[Event]]
# The locked path: (challenge, owner, action, extras, idempotency key) -> the order's trade rows.
Locked = Callable[[uuid.UUID, uuid.UUID, Action, dict[str, Any], str | None], Awaitable[list[Any]]]

ORDER_CONFLICTS = Counter(
    "challenges_order_conflicts_total",
    "Orders recomputed because the challenge changed (or the order's key was spent) after the state they used.",
)

# Events whose records need statements of their own (breach rows, day snapshots, the next
# phase): an order that causes one is applied under the row lock, in one transaction.
LOCKED_EVENTS = (Breached, DayRolled, StatusChanged)
# Optimistic attempts before an order queues for the row lock instead.
OPTIMISTIC_TRIES = 3
# What a batch's write may fail with because of one of its changes (see _run).
REFUSED_WRITE = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# What an optimistic attempt answers when the order must run under the row lock.
NEEDS_LOCK = object()

INVALID_ORDER = {
    "UNKNOWN_SYMBOL",
    "QUANTITY_OUT_OF_RANGE",
    "QUANTITY_STEP",
    "NO_POSITION",
    "STOP_LOSS_WRONG_SIDE",
    "TAKE_PROFIT_WRONG_SIDE",
    "STOPS_ON_FLAT",
}


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


class OrderPath:
    def __init__(
        self,
        db: AsyncEngine,
        market: MarketView,
        states: States,
        sessions: SessionCache,
        changes: Changes,
        sync: IndexSync,
        commits: Commits,
        locked: Locked,
        *,
        max_quote_age: float,
        always_ask_market: bool,
        writers: int,
        linger: float,
    ) -> None:
        self.db, self.market, self.states, self.sessions = db, market, states, sessions
        self.changes, self.sync, self.commits, self.locked = changes, sync, commits, locked
        self.max_quote_age = max_quote_age
        self.always_ask_market = always_ask_market
        self.batcher = OrderBatcher(self._run, workers=writers, linger=linger)

    async def close(self) -> None:
        """Stop the batch writers (tests, shutdown)."""
        await self.batcher.close()

    async def fresh_quotes(self, symbol: str) -> None:
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

    async def order(
        self, cid: uuid.UUID, user_id: uuid.UUID, act: Action, key: str | None, extra: dict[str, Any]
    ) -> Row:
        """The order's trade row (the first one, for a retried key)."""
        for _ in range(OPTIMISTIC_TRIES):
            try:
                trade = await self.batcher.submit(PendingOrder(cid, user_id, key, act, extra))
            except StaleChallenge:
                ORDER_CONFLICTS.inc()
                continue
            if trade is not NEEDS_LOCK:
                return cast(Row, trade)
            break
        trade_rows = await self.locked(cid, user_id, act, extra, key)
        return cast(Row, trade_rows[0])

    async def _run(self, batch: list[PendingOrder]) -> None:
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
                if not events or any(isinstance(e, LOCKED_EVENTS) for e in events):
                    order.resolve(NEEDS_LOCK)
                    continue
                work.append((order, row, session, change_of(row, session, events, now, order.extra)))
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
        self.commits.committed()
        for order, read, session, change in work:
            if change.challenge_id in applied:
                self.changes.written(change, applied[change.challenge_id])
                written = {**read, **change.challenge, "version": read["version"] + 1}
                written.pop("rules", None)  # the session holds them
                self.sessions.put(change.challenge_id, written, session)
                self.sync.refresh(read["id"], read["user_id"], session, written["version"])
                order.resolve({**change.trades[0], "challenge_status": session.account.status})
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
        self.states.refresh(session)
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
            return row, self.states.session(row, pos_rows)
        except Exception as exc:
            order.fail(exc)
            return None
