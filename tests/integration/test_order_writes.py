"""The order path's writes against a real PostgreSQL: a change computed from an old version of
its challenge writes nothing, while the other changes of its batch apply; an order computed
on a state this process cached is checked the same way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges.domain.events import TradeExecuted
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.plans import PLANS
from services.challenges.domain.session import Spec
from services.challenges.ledger import Ledger
from services.challenges.prices import CachedQuote, MarketView
from services.common.db import driver
from services.common.errors import ServiceError

pytestmark = pytest.mark.integration


async def _challenge(engine: AsyncEngine) -> tuple[uuid.UUID, uuid.UUID]:
    """A new challenge, created the way the service creates one (market data is not needed)."""
    uid = uuid.uuid4()
    ledger = Ledger(engine, cast(MarketView, None), MarkIndex())
    plan = PLANS[0]
    row = await ledger.create(uid, plan.id, Decimal(plan.account_sizes[0]), None)
    assert row["version"] == 0
    return row["id"], uid


def _buy(cid: uuid.UUID, uid: uuid.UUID, version: int, balance: str, key: str) -> sql.Change:
    """A fill of 1 BTCUSD at 50,000 with a $5 commission, computed at `version`."""
    values: dict[str, Any] = {
        "account": {"balance": balance},
        "status": "ACTIVE",
        "balance": Decimal(balance),
        "equity": Decimal(balance),
        "failure_reason": "",
        "ended_at": None,
        "last_trade_at": None,
        "total_trades": 1,
        "winning_trades": 0,
        "losing_trades": 1,
        "realized_pnl": Decimal("-5"),
        "started_at": None,
    }
    trade = {
        "id": uuid.uuid4(),
        "symbol": "BTCUSD",
        "side": "BUY",
        "quantity": Decimal(1),
        "price": Decimal(50000),
        "commission": Decimal(5),
        "realized_pnl": Decimal(-5),
        "reason": "order",
        "idempotency_key": key,
        "note": "",
        "tags": ["t"],
    }
    position = ("BTCUSD", Decimal(1), Decimal(50000), None, None)
    fill = TradeExecuted(
        datetime.now(UTC), "BTCUSD", "BUY", Decimal(1), Decimal(50000), Decimal(5), Decimal(-5), "order",
        Decimal(1), Decimal(balance), Decimal(balance), Decimal(50000), {},
    )  # fmt: skip
    return sql.Change(cid, uid, version, values, [trade], [position], [fill])


async def _state(engine: AsyncEngine, cid: uuid.UUID, uid: uuid.UUID) -> dict[str, Any]:
    async with driver(engine) as c:
        row, positions, _ = (await sql.challenge_states(c, [(cid, uid, None)]))[cid]
        trades = await c.fetchval("SELECT count(*) FROM trades WHERE challenge_id = $1", cid)
        events = await c.fetchval(
            "SELECT count(*) FROM events WHERE challenge_id = $1 AND type = 'trade_executed'", cid
        )
    return {
        "version": row["version"],
        "balance": row["balance"],
        "positions": [(p["symbol"], p["quantity"]) for p in positions],
        "trades": trades,
        "events": events,
    }


async def test_a_change_from_an_old_version_writes_nothing_while_its_batch_applies(engine: AsyncEngine) -> None:
    a, ua = await _challenge(engine)
    b, ub = await _challenge(engine)
    now = datetime.now(UTC)
    async with driver(engine) as c:
        first = await sql.write_changes(c, now, [_buy(a, ua, 0, "99995", "a1")])
        assert list(first) == [a] and first[a] is not None  # applied, with its outbox sequence
        # `a` is at version 1 now: a change computed from version 0 lost its race; b's applies.
        second = await sql.write_changes(c, now, [_buy(a, ua, 0, "99990", "a2"), _buy(b, ub, 0, "99995", "b1")])
    assert list(second) == [b]
    assert await _state(engine, a, ua) == {
        "version": 1,
        "balance": Decimal("99995"),
        "positions": [("BTCUSD", Decimal(1))],
        "trades": 1,
        "events": 1,
    }
    assert (await _state(engine, b, ub))["trades"] == 1


async def test_the_read_finds_a_retried_key_and_only_the_owners_challenge(engine: AsyncEngine) -> None:
    a, ua = await _challenge(engine)
    async with driver(engine) as c:
        await sql.write_changes(c, datetime.now(UTC), [_buy(a, ua, 0, "99995", "k")])
        found = await sql.challenge_states(c, [(a, ua, "k")])
        stranger = await sql.challenge_states(c, [(a, uuid.uuid4(), "k")])
    row, _, seen = found[a]
    assert seen is not None and seen["idempotency_key"] == "k" and row["version"] == 1
    assert stranger == {}


async def test_a_change_whose_key_a_trade_holds_writes_nothing_even_at_the_current_version(
    engine: AsyncEngine,
) -> None:
    a, ua = await _challenge(engine)
    now = datetime.now(UTC)
    async with driver(engine) as c:
        assert list(await sql.write_changes(c, now, [_buy(a, ua, 0, "99995", "k")])) == [a]
        # A retry computed on a cached state is at the current version, but its key is spent.
        assert await sql.write_changes(c, now, [_buy(a, ua, 1, "99990", "k")]) == {}
    state = await _state(engine, a, ua)
    assert (state["version"], state["balance"], state["trades"]) == (1, Decimal("99995"), 1)


def _market() -> MarketView:
    """Instruments and a fresh quote in the cache, so no order asks market (none runs here)."""
    market = MarketView(grpc.aio.insecure_channel("127.0.0.1:9"), cast(Any, None))
    market.specs = {"BTCUSD": Spec("BTCUSD", Decimal(1), "USD", Decimal("0.01"), Decimal(100), Decimal("0.01"))}
    market.quotes = {"BTCUSD": CachedQuote(Decimal(50000), Decimal(50010), datetime.now(UTC), True)}
    return market


async def _stored(engine: AsyncEngine, cid: uuid.UUID, uid: uuid.UUID) -> tuple[Decimal, Decimal, int]:
    """Balance, BTCUSD position and fills as stored, and the balance the fills add up to."""
    async with driver(engine) as c:
        row, positions, _ = (await sql.challenge_states(c, [(cid, uid, None)]))[cid]
        fills = await c.fetch("SELECT realized_pnl, commission FROM trades WHERE challenge_id = $1", cid)
    assert row["balance"] == row["initial_balance"] + sum(f["realized_pnl"] - f["commission"] for f in fills)
    return row["balance"], sum((p["quantity"] for p in positions), Decimal(0)), len(fills)


async def test_orders_on_a_cached_state_see_changes_made_elsewhere_and_never_fill_a_key_twice(
    engine: AsyncEngine,
) -> None:
    here = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    there = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)  # another replica
    plan = PLANS[0]
    uid = uuid.uuid4()
    cid = (await here.create(uid, plan.id, Decimal(plan.account_sizes[0]), None))["id"]
    await here.start(cid, uid)

    async def buy(ledger: Ledger, key: str, side: str = "BUY") -> Any:
        return await ledger.place(cid, uid, "BTCUSD", side, Decimal("0.5"), None, None, key, "", [])

    first = await buy(here, "k1")
    assert len(here.sessions) == 1  # what it wrote is cached here
    await buy(there, "k2")  # `here`'s cached state is now a version behind
    await buy(here, "k3", "SELL")  # recomputed on a fresh read: the position nets to 0.5
    balance, position, fills = await _stored(engine, cid, uid)
    assert (position, fills) == (Decimal("0.5"), 3)
    # What `here` cached after its write is what the database holds.
    entry = here.sessions.take(cid, uid)
    assert entry is not None
    row, cached = entry
    assert (cached.account.balance, cached.positions["BTCUSD"].quantity) == (balance, position)
    here.sessions.put(cid, row, cached)

    # A stranger's order is refused and leaves the owner's cached state in place.
    with pytest.raises(ServiceError):
        await here.place(cid, uuid.uuid4(), "BTCUSD", "BUY", Decimal("0.5"), None, None, "x", "", [])
    assert len(here.sessions) == 1

    # A retried key answers its first fill; nothing is filled twice.
    again = await buy(here, "k1")
    assert again["id"] == first["id"]
    assert await _stored(engine, cid, uid) == (balance, position, fills)


async def _waiting_for_a_lock(engine: AsyncEngine, pid: int) -> bool:
    async with driver(engine) as c:
        return bool(await c.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid))


async def test_a_batch_takes_its_row_locks_in_id_order_whatever_order_its_plan_reads_rows_in(
    engine: AsyncEngine,
) -> None:
    """Every multi-row writer locks challenges in id order, so writers of the same challenges
    (an order batch and a judgement, two replicas' batches) queue and never deadlock. A hash
    join reads the table in its physical order, so the write cannot leave the order to its
    UPDATE (for a table of a few challenges PostgreSQL's plan is such a join: without `locked`
    in the write, this test deadlocks every time); PostgreSQL would break the deadlock only
    after `deadlock_timeout` (1 s), and an order batch would be computed again."""
    while True:  # two challenges stored in the reverse of their id order
        first, uf = await _challenge(engine)
        second, us = await _challenge(engine)
        if first > second:
            break
    low, high = second, first
    async with driver(engine) as judge, driver(engine) as writer:
        tx = judge.transaction()
        await tx.start()
        await judge.fetch("SELECT id FROM challenges WHERE id = $1 FOR UPDATE", low)  # a judgement, half-way
        write = asyncio.ensure_future(
            sql.write_changes(
                writer, datetime.now(UTC), [_buy(first, uf, 0, "99995", "f"), _buy(second, us, 0, "99995", "s")]
            )
        )
        pid = writer.get_server_pid()
        for _ in range(500):
            if await _waiting_for_a_lock(engine, pid):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the write never waited for the judgement's lock")
        # The judgement goes on to its next challenge: free, as the waiting write holds nothing yet
        # (else the write holds it and waits for `low`: a deadlock, refused here after 0.5 s).
        await judge.execute("SET LOCAL lock_timeout = '500ms'")
        await judge.fetch("SELECT id FROM challenges WHERE id = $1 FOR UPDATE", high)
        await tx.commit()
        assert set(await write) == {low, high}
