"""Judging several challenges in one transaction (a tick that reaches many at once) against a
real PostgreSQL: each is judged exactly as it would be alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges.domain.events import EquityUpdated
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.plans import PLANS
from services.challenges.ledger import Ledger
from services.challenges.partitions import PARTITIONS, partition_of
from services.challenges.prices import CachedQuote
from services.common.db import driver
from tests.integration.test_order_writes import _market, _stored

pytestmark = pytest.mark.integration


async def test_one_tick_fails_the_challenges_it_breaks_in_one_judgement_and_spares_the_rest(
    engine: AsyncEngine,
) -> None:
    ledger = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    plan = PLANS[0]  # FTMO-style phase 1 on $10,000: daily loss $500, max loss $1,000
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for lots in ("0.1", "0.2", "0.05"):
        uid = uuid.uuid4()
        cid = (await ledger.create(uid, plan.id, Decimal("10000.00"), None))["id"]
        await ledger.start(cid, uid)
        await ledger.place(cid, uid, "BTCUSD", "BUY", Decimal(lots), None, None, f"k-{lots}", "", [])
        owners[cid] = uid
    broken, doubly, spared = owners
    # Another replica adds to one of them: the judgement works on what is stored, not on what
    # this process last wrote.
    there = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    await there.place(broken, owners[broken], "BTCUSD", "BUY", Decimal("0.05"), None, None, "k-more", "", [])

    # BTCUSD falls 6,010 from the buys' ask: -901.50 and -1,202 break the daily limit (the
    # second the maximum loss too); -300.50 does not.
    ledger.market.quotes["BTCUSD"] = CachedQuote(Decimal(44000), Decimal(44010), datetime.now(UTC), True)
    await ledger.judge_many(dict.fromkeys(owners, "BTCUSD"))

    async with driver(engine) as c:
        status = dict(await c.fetch("SELECT id, status FROM challenges WHERE id = ANY($1::uuid[])", list(owners)))
        breaches = await c.fetch(
            "SELECT challenge_id, rule, hard, observed FROM breaches WHERE challenge_id = ANY($1::uuid[])",
            list(owners),
        )
        ended = await c.fetch(
            "SELECT challenge_id, payload->>'to' AS status FROM events WHERE type = 'status_changed' "
            "AND challenge_id = ANY($1::uuid[]) AND payload->>'to' = 'FAILED'",
            list(owners),
        )
    assert status == {broken: "FAILED", doubly: "FAILED", spared: "ACTIVE"}
    assert {b["challenge_id"] for b in breaches if b["hard"]} == {broken, doubly}
    assert sorted(e["challenge_id"] for e in ended) == sorted([broken, doubly])
    for cid, uid in owners.items():
        balance, position, fills = await _stored(engine, cid, uid)  # balance = initial + Σ(P&L − commission)
        if cid == spared:
            assert (position, fills) == (Decimal("0.05"), 1)
        else:
            assert position == 0  # flattened at the breach price, the other replica's fill included
            assert fills == (3 if cid == broken else 2)
            assert balance < Decimal("10000.00") - Decimal(500)
    # Failed ones leave the index (no more marks, no day rolls); the spared one stays.
    assert ledger.clock_due.keys() & set(owners) == {spared}


async def _three_at_the_limit(engine: AsyncEngine, ledger: Ledger) -> list[uuid.UUID]:
    ids = []
    for n in range(3):
        uid = uuid.uuid4()
        cid = (await ledger.create(uid, PLANS[0].id, Decimal("10000.00"), None))["id"]
        await ledger.start(cid, uid)
        await ledger.place(cid, uid, "BTCUSD", "BUY", Decimal("0.1"), None, None, f"k{n}", "", [])
        ids.append(cid)
    ledger.market.quotes["BTCUSD"] = CachedQuote(Decimal(44000), Decimal(44010), datetime.now(UTC), True)
    return ids


async def _statuses(engine: AsyncEngine, ids: list[uuid.UUID]) -> list[str]:
    async with driver(engine) as c:
        found = dict(await c.fetch("SELECT id, status FROM challenges WHERE id = ANY($1::uuid[])", ids))
    return [found[cid] for cid in ids]


async def test_one_bad_challenge_holds_back_none_of_its_batch(engine: AsyncEngine) -> None:
    ledger = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    ids = await _three_at_the_limit(engine, ledger)
    async with driver(engine) as c:  # a row the engine cannot read
        await c.execute("UPDATE challenges SET account = '{}'::jsonb WHERE id = $1", ids[0])
    await ledger.judge_many(dict.fromkeys(ids, "BTCUSD"))
    assert await _statuses(engine, ids) == ["ACTIVE", "FAILED", "FAILED"]


async def test_a_batch_the_database_refuses_is_judged_one_by_one(
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    ids = await _three_at_the_limit(engine, ledger)
    write = sql.write_changes

    async def refuse_batches(c: Any, now: datetime, changes: list[sql.Change]) -> Any:
        if len(changes) > 1:
            raise asyncpg.CheckViolationError("refused")
        return await write(c, now, changes)

    monkeypatch.setattr(sql, "write_changes", refuse_batches)
    await ledger.judge_many(dict.fromkeys(ids, "BTCUSD"))
    assert await _statuses(engine, ids) == ["FAILED"] * 3


async def test_a_takeover_indexes_the_share_and_judges_exactly_only_what_needs_it(engine: AsyncEngine) -> None:
    """A replica dies; another takes its partitions over (Judging.take_over): every live
    challenge is indexed, the one the current price puts past its daily loss is failed at
    once, the one a missed reset left behind is due on the clock, the rest are not touched."""
    there = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)  # the replica that dies
    owners: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    for name, lots in (("broken", "0.1"), ("spared", "0.01"), ("stale", None)):
        uid = uuid.uuid4()
        cid = (await there.create(uid, PLANS[0].id, Decimal("10000.00"), None))["id"]
        await there.start(cid, uid)
        if lots is not None:
            await there.place(cid, uid, "BTCUSD", "BUY", Decimal(lots), None, None, f"k-{name}", "", [])
        owners[name] = (cid, uid)
    ids = [cid for cid, _ in owners.values()]
    stale = owners["stale"][0]
    async with driver(engine) as c:  # its replica died before the last two resets
        await c.execute(
            "UPDATE challenges SET account = jsonb_set(account, '{day}', to_jsonb($2::text)) WHERE id = $1",
            stale,
            (datetime.now(UTC).date() - timedelta(days=2)).isoformat(),
        )
        versions = dict(await c.fetch("SELECT id, version FROM challenges WHERE id = ANY($1::uuid[])", ids))

    owned: set[int] = set()
    here = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600, owns=lambda cid: partition_of(cid) in owned)
    # While nobody handled the share, BTCUSD fell 6,010 from the buys' ask: -601 breaks the
    # $500 daily loss of the 0.1 lot; the 0.01 lot's -60.10 breaks nothing.
    here.market.quotes["BTCUSD"] = CachedQuote(Decimal(44000), Decimal(44010), datetime.now(UTC), True)
    owned.update(range(PARTITIONS))
    indexed, judged = await here.take_over(set(owned))

    assert (indexed, judged) == (3, 1)
    assert await _statuses(engine, ids) == ["FAILED", "ACTIVE", "ACTIVE"]
    async with driver(engine) as c:
        after = dict(await c.fetch("SELECT id, version FROM challenges WHERE id = ANY($1::uuid[])", ids))
    assert after[owners["spared"][0]] == versions[owners["spared"][0]]  # read, never locked or written
    assert after[stale] == versions[stale]
    assert ledger_index_has(here, owners["spared"][0]) and ledger_index_has(here, stale)
    assert owners["broken"][0] not in here.clock_due  # failed: out of the index
    assert here.clock_due[stale] <= datetime.now(UTC)  # the marker's clock rolls its days at once
    assert here.clock_due[owners["spared"][0]] > datetime.now(UTC)


def ledger_index_has(ledger: Ledger, cid: uuid.UUID) -> bool:
    return cid in ledger.index.slot_of and cid in ledger.clock_due


async def test_an_equity_update_computed_before_a_breach_is_not_written_after_it(engine: AsyncEngine) -> None:
    ledger = Ledger(engine, _market(), MarkIndex(), max_quote_age=3600)
    broken = await _three_at_the_limit(engine, ledger)
    spared = broken.pop()
    await ledger.judge_many(dict.fromkeys(broken, "BTCUSD"))  # these two fail; the third is not judged
    async with driver(engine) as c:
        owner = dict(await c.fetch("SELECT id, user_id FROM challenges WHERE id = ANY($1::uuid[])", [*broken, spared]))
        async with c.transaction():
            last = await sql.append_events(
                c,
                [(cid, owner[cid], EquityUpdated(datetime.now(UTC), "9999.00")) for cid in (*broken, spared)],
                live_only=True,
            )
        written = await c.fetch("SELECT challenge_id, sequence FROM events WHERE type = 'equity_updated'")
        ended = await c.fetchval("SELECT max(sequence) FROM events WHERE challenge_id = ANY($1::uuid[])", broken)
    assert [r["challenge_id"] for r in written] == [spared]  # the failed ones got none
    assert last == written[0]["sequence"] and last > ended
    assert ledger.owner.keys().isdisjoint(broken)  # nor will the marker compute one for them
