"""Fan-out of ticks to stream subscribers.

Publishing never awaits: each subscriber keeps only the latest price per symbol
(bounded by the number of symbols), so a slow reader sees fewer, fresher prices and
never holds anyone else back. One upstream tick costs work proportional to the
subscribers of that symbol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from services.market.domain.ticks import Tick

SUBSCRIBERS = Gauge("market_stream_subscribers", "Open price-stream subscriptions.")
TICKS = Counter("market_price_ticks_total", "Price ticks published.", ("symbol", "provider"))
DROPPED = Counter("market_stream_ticks_coalesced_total", "Ticks replaced by a newer one before delivery.")


class Subscription:
    __slots__ = ("_event", "_pending", "_removed", "closed", "symbols")

    def __init__(self, symbols: frozenset[str] | None) -> None:
        self.symbols = symbols
        self._pending: dict[str, Tick] = {}
        self._event = asyncio.Event()
        self.closed = False

    def offer(self, tick: Tick) -> None:
        if tick.symbol in self._pending:
            DROPPED.inc()
        self._pending[tick.symbol] = tick
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def next_batch(self) -> list[Tick] | None:
        """The ticks since the last call (latest per symbol), or None once closed."""
        await self._event.wait()
        if self.closed:
            return None
        self._event.clear()
        batch = list(self._pending.values())
        self._pending.clear()
        return batch


class PriceHub:
    def __init__(self) -> None:
        self.latest: dict[str, Tick] = {}
        self._by_symbol: dict[str, set[Subscription]] = {}
        self._all: set[Subscription] = set()

    def publish(self, tick: Tick) -> None:
        self.latest[tick.symbol] = tick
        TICKS.labels(tick.symbol, tick.provider).inc()
        for sub in self._by_symbol.get(tick.symbol, ()):
            sub.offer(tick)
        for sub in self._all:
            sub.offer(tick)

    def subscribe(self, symbols: Iterable[str] | None) -> Subscription:
        wanted = frozenset(symbols) if symbols else None
        sub = Subscription(wanted)
        if wanted is None:
            self._all.add(sub)
        else:
            for s in wanted:
                self._by_symbol.setdefault(s, set()).add(sub)
        for tick in self.latest.values() if wanted is None else (self.latest[s] for s in wanted if s in self.latest):
            sub.offer(tick)  # a new subscriber starts with the current prices
        SUBSCRIBERS.inc()
        return sub

    def close_all(self) -> None:
        """Server stopping: end every stream so clients reconnect to another replica."""
        for sub in list(self._all) + [s for subs in self._by_symbol.values() for s in subs]:
            sub.close()

    def unsubscribe(self, sub: Subscription) -> None:
        if getattr(sub, "_removed", False):
            return
        sub._removed = True  # type: ignore[attr-defined]
        sub.closed = True
        if sub.symbols is None:
            self._all.discard(sub)
        else:
            for s in sub.symbols:
                subs = self._by_symbol.get(s)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_symbol[s]
        SUBSCRIBERS.dec()

    @property
    def subscriber_count(self) -> int:
        return len(self._all) + len({id(s) for subs in self._by_symbol.values() for s in subs})
