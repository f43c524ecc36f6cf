"""A live public exchange feed: Binance-style spot REST `bookTicker`, polled.

Off unless MARKET_LIVE_URL is set (make run needs no network). Tests point it at a
local server replaying recorded responses. Failures (timeouts, bad answers) count on
the breaker; while it is open the router falls back to the next provider.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import httpx

from services.market.domain.breaker import CircuitBreaker
from services.market.domain.instruments import Instrument
from services.market.domain.ticks import Tick, round_to_tick
from services.market.providers.base import Emit

# Our symbol -> the exchange's (USD quotes come from the USDT books).
EXCHANGE_SYMBOLS = {"BTCUSD": "BTCUSDT", "ETHUSD": "ETHUSDT"}


class LiveExchangeProvider:
    name = "live"

    def __init__(
        self,
        base_url: str,
        instruments: dict[str, Instrument],
        interval: float = 1.0,
        timeout: float = 2.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.map = {s: x for s, x in EXCHANGE_SYMBOLS.items() if s in instruments}
        self.ticks = {s: instruments[s].tick_size for s in self.map}
        self.back = {x: s for s, x in self.map.items()}
        self.symbols = frozenset(self.map)
        self.interval = interval
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker(failure_threshold=3, reset_timeout=3.0)
        self.last_tick_at: datetime | None = None

    def parse(self, payload: object, now: datetime) -> list[Tick]:
        if not isinstance(payload, list):
            raise ValueError("expected a list of book tickers")
        ticks = []
        for item in payload:
            sym = self.back.get(str(item.get("symbol", ""))) if isinstance(item, dict) else None
            if sym is None:
                continue
            try:
                bid, ask = Decimal(item["bidPrice"]), Decimal(item["askPrice"])
            except (KeyError, InvalidOperation, TypeError) as exc:
                raise ValueError(f"bad book ticker for {sym}") from exc
            if not (0 < bid <= ask):
                raise ValueError(f"crossed or empty book for {sym}")
            tick = self.ticks[sym]
            ticks.append(Tick(sym, round_to_tick(bid, tick), round_to_tick(ask, tick), now, self.name))
        return ticks

    async def poll_once(self, client: httpx.AsyncClient, emit: Emit) -> None:
        symbols = json.dumps(sorted(self.map.values()), separators=(",", ":"))
        r = await client.get(f"{self.base_url}/api/v3/ticker/bookTicker", params={"symbols": symbols})
        r.raise_for_status()
        now = datetime.now(UTC)
        ticks = self.parse(r.json(), now)
        if not ticks:
            raise ValueError("no prices in the answer")
        for t in ticks:
            emit(t)
        self.last_tick_at = now

    async def run(self, emit: Emit) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                if self.breaker.allow():
                    try:
                        await self.poll_once(client, emit)
                        self.breaker.record_success()
                    except (httpx.HTTPError, ValueError) as exc:
                        self.breaker.record_failure(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.interval)

    def detail(self) -> str:
        return f"{self.base_url} bookTicker for {', '.join(sorted(self.map))}" + (
            f"; last error: {self.breaker.last_error}" if self.breaker.last_error else ""
        )
