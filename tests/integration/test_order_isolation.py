"""One trader's order never fails another's: orders of different challenges share one write
(group commit), so a change the database refuses must fail alone (issue 16, item 1).

The orders here go straight to the ledger, past the services' input guard, as a value the
guard does not know to refuse would: a NUL byte in a note (PostgreSQL's text cannot hold
it) and a take-profit of 1e999999 (past NUMERIC's range)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.plans import PLANS
from services.challenges.ledger import Ledger
from services.common.db import driver
from services.common.errors import ServiceError
from tests.integration.test_order_writes import _market

pytestmark = pytest.mark.integration


async def _started(ledger: Ledger, uid: uuid.UUID) -> uuid.UUID:
    plan = PLANS[0]
    cid = (await ledger.create(uid, plan.id, Decimal(plan.account_sizes[0]), None))["id"]
    await ledger.start(cid, uid)
    return cid


async def test_orders_the_database_refuses_fail_alone_among_other_traders_orders(engine: AsyncEngine) -> None:
    ledger = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    victim, hostile = uuid.uuid4(), uuid.uuid4()
    mine = [await _started(ledger, victim) for _ in range(8)]
    theirs = [await _started(ledger, hostile) for _ in range(4)]

    def good(cid: uuid.UUID, n: int) -> Any:
        return ledger.place(cid, victim, "BTCUSD", "BUY", Decimal("0.01"), None, None, f"v{n}", "fine", [])

    def bad(cid: uuid.UUID, n: int) -> Any:
        if n % 2:
            return ledger.place(cid, hostile, "BTCUSD", "BUY", Decimal("0.01"), None, None, f"h{n}", "a\x00b", [])
        tp = Decimal("1e999999")
        return ledger.place(cid, hostile, "BTCUSD", "BUY", Decimal("0.01"), None, tp, f"h{n}", "", [])

    outcomes: list[Any] = []
    for round_ in range(6):  # each round's orders arrive together, so they share batches
        calls = [good(c, round_ * 10 + i) for i, c in enumerate(mine)]
        calls += [bad(c, round_ * 10 + i) for i, c in enumerate(theirs)]
        outcomes += await asyncio.gather(*calls, return_exceptions=True)

    victims = [o for i, o in enumerate(outcomes) if i % 12 < 8]
    hostiles = [o for i, o in enumerate(outcomes) if i % 12 >= 8]
    assert all(isinstance(o, dict) and o["note"] == "fine" for o in victims), victims
    # Each refused order hears why, as bad input (never an internal error).
    assert all(isinstance(o, ServiceError) for o in hostiles), hostiles
    assert {o.code for o in hostiles if isinstance(o, ServiceError)} == {grpc.StatusCode.INVALID_ARGUMENT}
    async with driver(engine) as c:
        filled = await c.fetchval("SELECT count(*) FROM trades WHERE user_id = $1 AND reason = 'order'", victim)
        refused = await c.fetchval("SELECT count(*) FROM trades WHERE user_id = $1", hostile)
    assert (filled, refused) == (48, 0)
    await ledger.orders.close()
