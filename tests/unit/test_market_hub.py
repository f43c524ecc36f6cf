"""Price fan-out: keep-latest per subscriber, isolation of slow readers, clean unsubscribe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from services.market.domain.instruments import BY_SYMBOL
from services.market.domain.model import CalibratedPath
from services.market.domain.ticks import Tick, round_to_tick
from services.market.hub import PriceHub


def tick(symbol: str, bid: str) -> Tick:
    b = Decimal(bid)
    return Tick(symbol, b, b + Decimal("0.0001"), datetime.now(UTC), "test")


async def test_slow_subscriber_keeps_only_latest_and_does_not_block_fast_one() -> None:
    hub = PriceHub()
    slow = hub.subscribe(["EURUSD"])
    fast = hub.subscribe(["EURUSD"])
    received: list[Decimal] = []
    for i in range(1000):
        hub.publish(tick("EURUSD", f"1.{i:04d}"))
        received.extend(t.bid for t in await fast.next_batch())
    assert len(received) == 1000  # the fast reader saw every tick
    batch = await slow.next_batch()  # the slow one sees only the newest
    assert [t.bid for t in batch] == [Decimal("1.0999")]


async def test_subscribers_only_get_their_symbols_and_start_with_current_price() -> None:
    hub = PriceHub()
    hub.publish(tick("BTCUSD", "65000"))
    sub = hub.subscribe(["BTCUSD"])
    assert [t.symbol for t in await sub.next_batch()] == ["BTCUSD"]
    hub.publish(tick("EURUSD", "1.1"))
    assert not await _has_batch(sub)
    hub.unsubscribe(sub)
    assert hub.subscriber_count == 0
    hub.publish(tick("BTCUSD", "65001"))  # no error publishing after unsubscribe


async def _has_batch(sub, wait: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    try:
        await asyncio.wait_for(sub.next_batch(), wait)
        return True
    except TimeoutError:
        return False


def test_simulated_feed_is_deterministic_per_seed_and_respects_ticks() -> None:
    inst = BY_SYMBOL["EURUSD"]
    now = datetime.now(UTC)
    a = [CalibratedPath(inst, seed=7).step(1.0, now) for _ in range(1)]
    p1, p2, p3 = CalibratedPath(inst, 7), CalibratedPath(inst, 7), CalibratedPath(inst, 8)
    s1 = [p1.step(1.0, now) for _ in range(50)]
    s2 = [p2.step(1.0, now) for _ in range(50)]
    s3 = [p3.step(1.0, now) for _ in range(50)]
    assert s1 == s2 and s1 != s3 and a
    for t in s1:
        assert t.ask > t.bid
        assert round_to_tick(t.bid, inst.tick_size) == t.bid
