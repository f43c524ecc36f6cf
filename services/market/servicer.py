"""Thin gRPC translation for MarketService."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from google.api import httpbody_pb2
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from services.common import decimals, identity, pagination, sse
from services.common.errors import invalid_argument, not_found, permission_denied
from services.common.rpc import Context
from services.common.slots import Slots
from services.common.timestamps import timestamp as _ts
from services.market import recording, store
from services.market.domain.calendars import Status
from services.market.domain.candles import INTERVALS, Candle
from services.market.domain.instruments import Instrument
from services.market.domain.ticker import Ticker
from services.market.domain.ticks import Tick
from services.market.feed import PriceRouter
from services.market.hub import PriceHub, Subscription
from services.market.ingestion import Ingestion

MAX_SYMBOLS_PER_REQUEST = 100
DEFAULT_CANDLES, MAX_CANDLES = 100, 1000
MAX_OVERVIEW = 50


T = TypeVar("T")


def tick_id(tick: Tick) -> int:
    """A price's SSE id: its tick's time in microseconds."""
    return int(tick.time.timestamp() * 1_000_000)


class PerTick(Generic[T]):
    """What a tick becomes, built once and handed to everyone who asks for that same tick
    (kept per symbol for its latest tick only)."""

    def __init__(self, build: Callable[[Tick], T]) -> None:
        self.build = build
        self._last: dict[str, tuple[Tick, T]] = {}

    def __call__(self, tick: Tick) -> T:
        hit = self._last.get(tick.symbol)
        if hit is not None and hit[0] is tick:
            return hit[1]
        value = self.build(tick)
        self._last[tick.symbol] = (tick, value)
        return value


def instrument_pb(i: Instrument | RowMapping) -> market_pb2.Instrument:
    g = (lambda k: i[k]) if isinstance(i, RowMapping) else (lambda k: getattr(i, k))
    return market_pb2.Instrument(
        symbol=g("symbol"),
        display_name=g("display_name"),
        asset_class=market_pb2.AssetClass.Value(g("asset_class")),
        quote_currency=g("quote_currency"),
        tick_size=decimals.fmt(g("tick_size")),
        contract_size=decimals.fmt(g("contract_size")),
        min_quantity=decimals.fmt(g("min_quantity")),
        max_quantity=decimals.fmt(g("max_quantity")),
        quantity_step=decimals.fmt(g("quantity_step")),
        calendar=g("calendar"),
        exchange=g("exchange"),
    )


def price_pb(t: Tick, market_open: bool = True) -> market_pb2.Price:
    return market_pb2.Price(
        market_open=market_open,
        symbol=t.symbol,
        bid=decimals.fmt(t.bid),
        ask=decimals.fmt(t.ask),
        last=decimals.fmt(t.mid),
        time=_ts(t.time),
        provider=t.provider,
    )


def ticker_pb(t: Ticker | None) -> market_pb2.Ticker24h | None:
    if t is None:
        return None
    return market_pb2.Ticker24h(
        open=decimals.fmt(t.open),
        high=decimals.fmt(t.high),
        low=decimals.fmt(t.low),
        last=decimals.fmt(t.last),
        change=decimals.fmt(t.change),
        change_percent=decimals.fmt(t.change_percent),
        volume=decimals.fmt(t.volume),
    )


def status_pb(calendar: str, st: Status) -> market_pb2.MarketStatus:
    pb = market_pb2.MarketStatus(calendar=calendar, is_open=st.is_open)
    if st.next_open is not None:
        pb.next_open.CopyFrom(_ts(st.next_open))
    if st.next_close is not None:
        pb.next_close.CopyFrom(_ts(st.next_close))
    return pb


def candle_pb(c: Candle) -> market_pb2.Candle:
    return market_pb2.Candle(
        open_time=_ts(c.open_time),
        open=decimals.fmt(c.open),
        high=decimals.fmt(c.high),
        low=decimals.fmt(c.low),
        close=decimals.fmt(c.close),
        volume=decimals.fmt(c.volume),
    )


def split_symbols(raw: list[str]) -> list[str]:
    """`?symbols=A,B` and `?symbols=A&symbols=B` both work; order kept, duplicates dropped."""
    out: dict[str, None] = {}
    for item in raw:
        for s in item.split(","):
            s = s.strip().upper()
            if s:
                out[s] = None
    if len(out) > MAX_SYMBOLS_PER_REQUEST:
        raise invalid_argument({"symbols": f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request"})
    return list(out)


class MarketServicer(market_pb2_grpc.MarketServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        hub: PriceHub,
        router: PriceRouter,
        instruments: dict[str, Instrument],
        scripted: bool,
        ingestion: Ingestion,
        exports: int = 4,
        heartbeat: float = sse.HEARTBEAT,
    ) -> None:
        self.heartbeat = heartbeat
        self.ingestion = ingestion
        self.engine = engine
        self.hub = hub
        self.router = router
        self.instruments = instruments
        self.scripted_enabled = scripted
        # One message per tick for every stream that carries it, built (the calendar asked, the
        # JSON framed) once, not once per subscriber: at 1,000 subscribers that was most of a
        # tick's cost.
        self._streamed = PerTick(self._price)
        self._sse_frame = PerTick(lambda t: sse.framed(sse.Event("price", self._streamed(t), tick_id(t))))
        # Exports read pages of the database while their client reads: one per user, a few in all.
        self.exports = Slots("exports", "TOO_MANY_EXPORTS", per_user=1, total=exports)

    def _known(self, symbol: str, field: str = "symbol") -> Instrument:
        sym = symbol.strip().upper()
        if not sym:
            raise invalid_argument({field: "is required"})
        inst = self.instruments.get(sym)
        if inst is None:
            raise not_found(f"symbol {sym[:32]!r}", reason="UNKNOWN_SYMBOL")
        return inst

    def _price(self, tick: Tick) -> market_pb2.Price:
        inst = self.instruments[tick.symbol]
        return price_pb(tick, self.router.calendars.status(inst.calendar, tick.time).is_open)

    def _status(self, inst: Instrument, now: datetime) -> Status:
        return self.router.calendars.status(inst.calendar, now)

    async def ListSymbols(
        self, request: market_pb2.ListSymbolsRequest, context: Context
    ) -> market_pb2.ListSymbolsResponse:
        page = pagination.parse(request.page_size, request.page_token, default=100)
        asset_class = market_pb2.AssetClass.Name(request.asset_class) if request.asset_class else None
        after = page.text("after")
        async with self.engine.connect() as conn:
            rows = await store.list_instruments(conn, asset_class=asset_class, after=after, limit=page.size + 1)
        rows, more = page.cut(rows)
        return market_pb2.ListSymbolsResponse(
            instruments=[instrument_pb(r) for r in rows],
            next_page_token=pagination.token({"after": rows[-1]["symbol"]}) if more else "",
        )

    async def ListSessions(
        self, request: market_pb2.ListSessionsRequest, context: Context
    ) -> market_pb2.ListSessionsResponse:
        page = pagination.parse(request.page_size, request.page_token, default=50)
        raw = page.text("before")  # sessions are listed newest first, by id
        before = int(raw) if raw and raw.isdigit() else None
        rows = await recording.sessions(self.engine, before, page.size + 1)
        rows, more = page.cut(rows)
        return market_pb2.ListSessionsResponse(
            sessions=[
                market_pb2.RecordedSession(
                    id=r["id"],
                    started_at=_ts(r["started_at"]),
                    ended_at=_ts(r["ended_at"]),
                    symbols=r["symbols"],
                    tick_count=r["tick_count"],
                )
                for r in rows
            ],
            next_page_token=pagination.token({"before": str(rows[-1]["id"])}) if more else "",
        )

    async def GetSessionTicks(
        self, request: market_pb2.GetSessionTicksRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        if request.session_id <= 0:
            raise invalid_argument({"session_id": "must be a positive session id"})
        symbols = split_symbols(list(request.symbols))
        for sym in symbols:
            self._known(sym, "symbols")
        if not await recording.session_exists(self.engine, request.session_id):
            raise not_found("session")
        caller = identity.require()
        with self.exports.hold(caller.user_id, per_user=caller.role != "service"):
            async for chunk in recording.ticks_csv(self.engine, self.instruments, request.session_id, symbols):
                yield httpbody_pb2.HttpBody(content_type="text/csv", data=chunk.encode())

    async def GetSymbol(self, request: market_pb2.GetSymbolRequest, context: Context) -> market_pb2.SymbolDetail:
        inst = self._known(request.symbol)
        now = datetime.now(UTC)
        detail = market_pb2.SymbolDetail(
            instrument=instrument_pb(inst), status=status_pb(inst.calendar, self._status(inst, now))
        )
        tick = self.hub.latest.get(inst.symbol)
        if tick is not None:
            detail.price.CopyFrom(self._price(tick))
        ticker = ticker_pb(self.router.rolling.ticker(inst.symbol, now))
        if ticker is not None:
            detail.ticker.CopyFrom(ticker)
        return detail

    async def GetPrices(self, request: market_pb2.GetPricesRequest, context: Context) -> market_pb2.GetPricesResponse:
        symbols = split_symbols(list(request.symbols)) or sorted(self.instruments)
        for s in symbols:
            self._known(s, "symbols")
        return market_pb2.GetPricesResponse(
            prices=[self._price(self.hub.latest[s]) for s in symbols if s in self.hub.latest]
        )

    async def GetChart(self, request: market_pb2.GetChartRequest, context: Context) -> market_pb2.GetChartResponse:
        inst = self._known(request.symbol)
        violations = {}
        interval = request.interval or "1m"
        if interval not in INTERVALS:
            violations["interval"] = f"must be one of {', '.join(INTERVALS)}"
        if request.limit < 0:
            violations["limit"] = "must not be negative"
        start = request.start_time.ToDatetime(UTC) if request.HasField("start_time") else None
        end = request.end_time.ToDatetime(UTC) if request.HasField("end_time") else None
        if start is not None and end is not None and start >= end:
            violations["end_time"] = "must be after start_time"
        if violations:
            raise invalid_argument(violations)
        limit = min(request.limit or DEFAULT_CANDLES, MAX_CANDLES)  # capped, not refused
        async with self.engine.connect() as conn:
            rows = await store.chart(conn, inst.symbol, interval, start, end, limit)
        # The open candle in memory is fresher than its last flush.
        live = self.router.candles.current.get((inst.symbol, interval))
        if live is not None and (end is None or live.open_time < end) and (start is None or live.open_time >= start):
            rows = [c for c in rows if c.open_time != live.open_time]
            if not rows or live.open_time > rows[-1].open_time:
                rows.append(live)
            rows = rows[-limit:] if start is None else rows[:limit]
        return market_pb2.GetChartResponse(symbol=inst.symbol, interval=interval, candles=[candle_pb(c) for c in rows])

    async def GetMarketStatus(
        self, request: market_pb2.GetMarketStatusRequest, context: Context
    ) -> market_pb2.GetMarketStatusResponse:
        symbols = split_symbols(list(request.symbols)) or sorted(self.instruments)
        now = datetime.now(UTC)
        out = []
        for s in symbols:
            inst = self._known(s, "symbols")
            out.append(market_pb2.SymbolStatus(symbol=s, status=status_pb(inst.calendar, self._status(inst, now))))
        return market_pb2.GetMarketStatusResponse(statuses=out)

    async def GetOverview(
        self, request: market_pb2.GetOverviewRequest, context: Context
    ) -> market_pb2.GetOverviewResponse:
        if request.limit < 0:
            raise invalid_argument({"limit": "must not be negative"})
        limit = min(request.limit or 5, MAX_OVERVIEW)
        now = datetime.now(UTC)
        tickers = [(s, t) for s in sorted(self.instruments) if (t := self.router.rolling.ticker(s, now)) is not None]

        def entries(items: list[tuple[str, Ticker]]) -> list[market_pb2.TickerEntry]:
            return [market_pb2.TickerEntry(symbol=s, ticker=ticker_pb(t)) for s, t in items[:limit]]

        by_change = sorted(tickers, key=lambda st: st[1].change_percent, reverse=True)
        return market_pb2.GetOverviewResponse(
            top_gainers=entries([st for st in by_change if st[1].change_percent > 0]),
            top_losers=entries([st for st in reversed(by_change) if st[1].change_percent < 0]),
            # Activity by traded value in the quote currency, comparable across price levels.
            most_active=entries(sorted(tickers, key=lambda st: st[1].volume * st[1].last, reverse=True)),
        )

    async def GetProviderHealth(
        self, request: market_pb2.GetProviderHealthRequest, context: Context
    ) -> market_pb2.GetProviderHealthResponse:
        providers = await self.ingestion.provider_health()  # the leader's, wherever asked
        # Public: name, state and last tick. The detail (a live feed's URL, its last error's
        # text) tells an attacker what we run and where: operators only.
        caller = identity.current()
        operator = caller is not None and caller.role == "admin"
        out = []
        for p in providers:
            pb = market_pb2.ProviderHealth(
                name=p["name"],
                healthy=p["healthy"],
                circuit_state=p["circuit_state"],
                detail=p["detail"] if operator else "",
            )
            if p["last_tick_at"] is not None:
                pb.last_tick_at.CopyFrom(_ts(datetime.fromtimestamp(p["last_tick_at"], UTC)))
            out.append(pb)
        return market_pb2.GetProviderHealthResponse(providers=out)

    async def StreamPrices(
        self, request: market_pb2.StreamPricesRequest, context: Context
    ) -> AsyncIterator[market_pb2.Price]:
        async for tick in self._ticks(self._subscribe(request)):
            yield self._streamed(tick)

    async def StreamPricesSse(
        self, request: market_pb2.StreamPricesRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        sub = self._subscribe(request)  # an unknown symbol is refused before the stream opens
        after = sse.resume_after(context, 0)
        async for body in sse.stream(self._price_events(sub, after), self.heartbeat):
            yield body

    async def _price_events(self, sub: Subscription, after: int) -> AsyncIterator[httpbody_pb2.HttpBody]:
        # A price's id is its tick's time in microseconds: a reconnect skips what it has seen
        # (the current prices it starts with included) and gets everything newer.
        async for tick in self._ticks(sub):
            if tick_id(tick) > after:
                yield self._sse_frame(tick)

    def _subscribe(self, request: market_pb2.StreamPricesRequest) -> Subscription:
        symbols = split_symbols(list(request.symbols))
        for s in symbols:
            self._known(s, "symbols")
        return self.hub.subscribe(symbols or None)

    async def _ticks(self, sub: Subscription) -> AsyncIterator[Tick]:
        try:
            while (batch := await sub.next_batch()) is not None:
                for tick in batch:
                    yield tick
        finally:
            # Client gone (cancelled) or server stopping: free the subscription.
            self.hub.unsubscribe(sub)

    async def GetQuote(self, request: market_pb2.GetQuoteRequest, context: Context) -> market_pb2.Quote:
        inst = self._known(request.symbol)
        tick = self.hub.latest.get(inst.symbol)
        if tick is None:
            raise not_found(f"quote for {inst.symbol}", reason="NO_QUOTE")
        now = datetime.now(UTC)
        quote = market_pb2.Quote(
            price=self._price(tick), market_open=self._status(inst, now).is_open, instrument=instrument_pb(inst)
        )
        quote.age.FromTimedelta(max(now - tick.time, timedelta(0)))
        return quote

    async def SetPrice(self, request: market_pb2.SetPriceRequest, context: Context) -> market_pb2.Price:
        identity.require_admin()
        if not self.scripted_enabled:
            raise permission_denied("the scripted price source is disabled", reason="SCRIPTED_PRICES_DISABLED")
        inst = self._known(request.symbol)
        bid = decimals.parse(request.bid, "bid", positive=True)
        ask = decimals.parse(request.ask, "ask", positive=True)
        assert bid is not None and ask is not None
        if ask < bid:
            raise invalid_argument({"ask": "must not be below bid"})
        return self._price(await self.ingestion.set_price(inst.symbol, Decimal(bid), Decimal(ask)))
