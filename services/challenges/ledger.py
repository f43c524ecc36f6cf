"""The service layer: every change to a challenge, as one transaction.

Rebuild the challenge's Session from the stored state and the current quotes (`states`), let
the pure engine act, then persist the new state, positions, trades, breaches, snapshots and
outbox events together (`changes`). Orders go through `order_path` (optimistic, batched);
everything else locks the row first (`transact`). Either way only a change computed from the
challenge's latest committed state is written, so concurrent orders never corrupt a balance
and nothing is accepted after a failure. Judgement without an order is `judging`; the
mark-to-market index and the clock follow what is committed (`index_sync`).

`Ledger` wires these together and holds the use cases: create, start, place, close, cancel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges import store
from services.challenges.changes import Changes, Row, new_challenge_values
from services.challenges.commits import Commits
from services.challenges.domain import engine
from services.challenges.domain.events import Event, StatusChanged
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.session import OrderRejected, Session
from services.challenges.index_sync import IndexSync
from services.challenges.judging import Judging
from services.challenges.order_path import Action, OrderPath, order_error
from services.challenges.prices import MarketView
from services.challenges.session_cache import SessionCache
from services.challenges.states import States
from services.common.db import driver_connection
from services.common.errors import ServiceError, failed_precondition, invalid_argument, not_found


class Ledger:
    def __init__(
        self,
        db: AsyncEngine,
        market: MarketView,
        index: MarkIndex,
        max_quote_age: float = 2.0,
        always_ask_market: bool = False,
        owns: Callable[[uuid.UUID], bool] = lambda cid: True,
        holds: Callable[[uuid.UUID], bool] | None = None,
        order_writers: int = 1,
        order_linger: float = 0.0,
        session_cache: int = 10_000,
        max_pending: int = 10,
        max_live: int = 20,
    ) -> None:
        # Challenges a trader may hold unstarted (PENDING): creating one is free and each
        # carries a balance, so without a cap one trader opened 60 $200k accounts in 0.3 s.
        self.max_pending = max_pending
        self.max_live = max_live
        self.db, self.market, self.index = db, market, index
        # Whether this replica judges a challenge now (its partition's lease is certainly valid),
        # and whether the partition is its share at all (the index keeps those: a lease renewal
        # late by a few seconds must not drop them from the index until they next change).
        self.owns = owns
        self.commits = Commits()
        self.sessions = SessionCache(session_cache)
        self.states = States(market)
        self.changes = Changes(self.commits, self.sessions)
        self.sync = IndexSync(index, holds or owns)
        self.judging = Judging(db, self.states, self.changes, self.sync, self.commits, owns)
        self.orders = OrderPath(
            db,
            market,
            self.states,
            self.sessions,
            self.changes,
            self.sync,
            self.commits,
            self._locked_order,
            max_quote_age=max_quote_age,
            always_ask_market=always_ask_market,
            writers=order_writers,
            linger=order_linger,
        )

    # --- what the marker, the servicer and the server use ----------------------------------------

    @property
    def clock_due(self) -> dict[uuid.UUID, datetime]:
        return self.sync.clock_due

    @property
    def owner(self) -> dict[uuid.UUID, uuid.UUID]:
        return self.sync.owner

    @property
    def new_events(self) -> asyncio.Event:
        return self.commits.new_events

    def events_committed(self) -> None:
        self.commits.committed()

    def session_of(self, row: Row, pos_rows: list[Any]) -> Session:
        return self.states.session(row, pos_rows)

    def drop_partitions(self, lost: set[int]) -> None:
        self.sync.drop_partitions(lost)

    async def judge_many(self, wanted: dict[uuid.UUID, str | None]) -> None:
        await self.judging.judge_many(wanted)

    async def load_live(self, partitions: set[int] | None = None) -> int:
        return await self.judging.load_live(partitions)

    async def take_over(self, partitions: set[int]) -> tuple[int, int]:
        return await self.judging.take_over(partitions)

    async def follow_outbox(self, poll: float = 0.3) -> None:
        await self.judging.follow_outbox(poll)

    # --- the locked transaction -----------------------------------------------------------------

    async def transact(
        self,
        cid: uuid.UUID,
        user_id: uuid.UUID | None,
        action: Action,
        *,
        extra: dict[str, Any] | None = None,
        key: str | None = None,
        check: Callable[[Any, Row], Awaitable[None]] | None = None,
    ) -> tuple[Row, Session | None, list[Event], list[Any]]:
        """Lock the challenge, run `action` on its session, write what changed, commit.

        `check` runs in the same transaction right after the lock, for a rule that needs the
        database (a quota counted across the trader's challenges).

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
                if check is not None:
                    await check(conn, row)
                # Stamped under the lock, so fills' times follow the order they were applied in.
                now = datetime.now(UTC)
                pos_rows, seen = await sql.positions_and_trade(conn, cid, key)
                if seen is not None:
                    return row, None, [], [seen]  # a retry: the first fill, never a second one
                session = self.states.session(row, pos_rows)
                try:
                    events = action(session, row)
                except OrderRejected as exc:
                    raise order_error(exc) from None
                if not events:
                    self.sync.refresh(row["id"], row["user_id"], session, row["version"])
                    return row, session, events, []  # nothing changed: no write at all
                [(change, last)] = await self.changes.persist(conn, [(row, session, events, extra or {})], now)
        self.changes.written(change, last)
        self.commits.committed()
        self.sync.refresh(row["id"], row["user_id"], session, row["version"] + 1)
        return row, session, events, change.trades

    async def _locked_order(
        self, cid: uuid.UUID, user_id: uuid.UUID, act: Action, extra: dict[str, Any], key: str | None
    ) -> list[Any]:
        _, session, _, trade_rows = await self.transact(cid, user_id, act, extra=extra, key=key)
        if session is not None and trade_rows:  # the answer says where the fill left the challenge
            trade_rows = [{**trade_rows[0], "challenge_status": session.account.status}, *trade_rows[1:]]
        return trade_rows

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
                driver_conn, new_challenge_values(user_id, plan, rules, key, now)
            )
            if row is None:  # a concurrent retry with the same key won the insert
                row = await store.challenge_by_key(conn, user_id, key or "")
                assert row is not None
                return row
            created = StatusChanged(
                now,
                None,
                engine.PENDING,
                "created",
                details={
                    "plan_id": plan_id,
                    "phase": plan["phase"],
                    "initial_balance": str(rules.initial_balance),
                    "daily_loss": str(rules.limit("daily_loss") or ""),
                    "max_loss": str(rules.limit("max_loss") or ""),
                    "profit_target": str(rules.limit("profit_target") or ""),
                },
            )
            # The one outbox writer (ledger_sql), on this transaction's own connection.
            await sql.append_events(driver_conn, [(row["id"], user_id, created)])
        self.commits.committed()
        return row

    async def start(self, cid: uuid.UUID, user_id: uuid.UUID | None) -> RowMapping:
        def act(s: Session, row: Row) -> list[Event]:
            if s.account.status == engine.ACTIVE:
                return []  # starting twice is a no-op
            if s.account.status != engine.PENDING:
                raise OrderRejected("CHALLENGE_NOT_PENDING", f"challenge is {s.account.status}")
            now = datetime.now(UTC)
            engine.start(s.account, s.rules, now)
            return [StatusChanged(now, engine.PENDING, engine.ACTIVE, "started")]

        await self.transact(cid, user_id, act, check=self._room_for_a_live_challenge)
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, None)
        assert row is not None
        return row

    async def _room_for_a_live_challenge(self, conn: Any, row: Row) -> None:
        """At most `max_live` ACTIVE or PAUSED challenges per trader: a start waits for the
        trader's other starts (the lock lasts until commit), so the count cannot be raced past."""
        if not self.max_live or row["status"] != engine.PENDING:
            return
        if await sql.live_challenges_locked(conn, row["user_id"]) >= self.max_live:
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self.max_live} challenges may be live at once; finish one first",
                reason="TOO_MANY_LIVE_CHALLENGES",
                metadata={"limit": str(self.max_live)},
            )

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
        await self.orders.fresh_quotes(symbol)

        def act(s: Session, row: Row) -> list[Event]:
            return s.place(symbol, side, quantity, datetime.now(UTC), stop_loss, take_profit)

        return await self.orders.order(cid, user_id, act, key, {"idempotency_key": key, "note": note, "tags": tags})

    async def close(self, cid: uuid.UUID, user_id: uuid.UUID, symbol: str, key: str | None) -> Row:
        await self.orders.fresh_quotes(symbol)

        def act(s: Session, row: Row) -> list[Event]:
            return s.close(symbol, datetime.now(UTC))

        return await self.orders.order(cid, user_id, act, key, {"idempotency_key": key})

    async def cancel(self, cid: uuid.UUID, reason: str) -> None:
        def act(s: Session, row: Row) -> list[Event]:
            if s.account.status in engine.ENDED:
                raise OrderRejected("CHALLENGE_ENDED", f"challenge is already {s.account.status}")
            now = datetime.now(UTC)
            events = s.flatten(now, "cancelled")
            old = s.account.status
            s.account.status = engine.CANCELLED
            return [*events, StatusChanged(now, old, engine.CANCELLED, reason or "cancelled by an admin")]

        await self.transact(cid, None, act)
