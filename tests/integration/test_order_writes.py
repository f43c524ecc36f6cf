"""The order path's writes against a real PostgreSQL: a change computed from an old version of
its challenge writes nothing, while the other changes of its batch apply."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges import store
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.plans import PLANS
from services.challenges.domain.rulepacks import BUILT_IN
from services.challenges.ledger import Ledger
from services.challenges.prices import MarketView
from services.challenges.server import SPEC
from services.common.config import ServiceSettings
from services.common.db import create_engine, driver
from services.common.migrations import migrate
from tests.conftest import Database

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    url = database.create_database()
    engine = create_engine(ServiceSettings(service_name=SPEC.name, database_url=url))  # type: ignore[arg-type]
    await migrate(engine, SPEC.name, SPEC.migrations)
    async with engine.begin() as conn:
        await store.seed(conn, BUILT_IN, PLANS)
    yield engine
    await engine.dispose()


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
    return sql.Change(cid, uid, version, values, [trade], [position], [("trade_executed", {"key": key})])


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
