"""Market domain: real-bar replay, candle aggregation, calendars, breaker, failover."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.market.domain import calendars
from services.market.domain.breaker import CircuitBreaker
from services.market.domain.candles import CandleAggregator, bucket_start
from services.market.domain.instruments import BY_SYMBOL
from services.market.domain.replay import Bar, ReplayCursor, intrabar_path, load_bars
from services.market.domain.ticks import Tick
from services.market.feed import PriceRouter
from services.market.hub import PriceHub
from services.market.providers.replay import data_dir

D = Decimal


# --- replay ------------------------------------------------------------------------------------


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    low = draw(st.integers(1, 10_000))
    high = low + draw(st.integers(0, 500))
    o = draw(st.integers(low, high))
    c = draw(st.integers(low, high))
    tick = D("0.01")
    return Bar(datetime(2020, 1, 1, tzinfo=UTC), o * tick, high * tick, low * tick, c * tick, D(1))


@given(bars(), st.integers(3, 200), st.integers(0, 2**31))
@settings(max_examples=200)
def test_intrabar_path_respects_open_high_low_close(bar: Bar, steps: int, seed: int) -> None:
    path = intrabar_path(bar, steps, seed, "X", 0, D("0.01"))
    assert len(path) == steps + 1
    assert path[0] == bar.open and path[-1] == bar.close
    assert max(path) == bar.high and min(path) == bar.low
    assert path == intrabar_path(bar, steps, seed, "X", 0, D("0.01"))  # deterministic


def test_hourly_candles_from_replayed_eurusd_ticks_equal_the_file() -> None:
    bars = load_bars(data_dir() / "EURUSD.csv")[:48]
    # Checked by hand against the file's first row: 2017-04-19 09:00,1.0716,1.0722,1.07083,1.07219
    assert bars[0] == Bar(
        datetime(2017, 4, 19, 9, tzinfo=UTC), D("1.0716"), D("1.0722"), D("1.07083"), D("1.07219"), D("1413")
    )
    agg = CandleAggregator(("1h",))
    steps = 120
    for i, bar in enumerate(bars):
        for k, price in enumerate(intrabar_path(bar, steps, 42, "EURUSD", i, D("0.00001"))):
            # Market time inside the bar: the last tick lands just before the next hour.
            t = bar.time + timedelta(seconds=3599 * k / steps)
            agg.add("EURUSD", t, price, bar.volume / (steps + 1))
    candles = {c.open_time: c for c in agg.drain()}
    for bar in bars:
        c = candles[bar.time]
        assert (c.open, c.high, c.low, c.close) == (bar.open, bar.high, bar.low, bar.close)
        assert abs(c.volume - bar.volume) < D("0.000001")


def test_a_replay_plays_to_the_end_and_back_without_a_jump_or_a_runaway_price() -> None:
    """BTCUSD's file ends 16,826× above its start: looping by restarting it scaled to the last
    price multiplied the level by that every pass. Played to the end and back, every price
    stays within the file's own range, each tick continues from the last, and both turns are
    seamless."""
    bars = load_bars(data_dir() / "BTCUSD.csv")
    low, high = min(b.low for b in bars), max(b.high for b in bars)
    cursor = ReplayCursor(bars, "BTCUSD", 3, 42, D("0.01"))
    prices = [cursor.next_price()[0] for _ in range(len(bars) * 4 * 5)]  # 5 passes of 4 ticks a bar
    assert cursor.loop == 5 and cursor.scale == 1
    assert all(low <= p <= high for p in prices)
    # Within a bar a tick moves at most its range; between bars at most the gap the file holds.
    worst = max(b.high - b.low for b in bars) + max(abs(b.open - a.close) for a, b in itertools.pairwise(bars))
    assert max(abs(b - a) for a, b in itertools.pairwise(prices)) <= worst
    turn = len(bars) * 4  # the first pass's last tick is the last close; the next starts there
    assert prices[turn - 1] == prices[turn] == bars[-1].close
    assert prices[2 * turn - 1] == prices[2 * turn] == bars[0].open  # back at the start


def test_candle_buckets_and_late_ticks() -> None:
    t = datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC)
    assert bucket_start(t, "5m") == datetime(2026, 3, 8, 6, 55, tzinfo=UTC)
    assert bucket_start(t, "1d") == datetime(2026, 3, 8, tzinfo=UTC)
    agg = CandleAggregator(("1m",))
    agg.add("X", t, D(10))
    agg.add("X", t + timedelta(seconds=1), D(11))  # next minute
    agg.add("X", t, D(99))  # late tick for a closed candle: ignored
    closed = {c.open_time: c for c in agg.drain()}
    assert closed[bucket_start(t, "1m")].high == D(10)


# --- calendars -----------------------------------------------------------------------------------


def _at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_weekend_fx_and_stocks_closed_crypto_open() -> None:
    saturday = _at("2026-11-21T12:00")
    assert not calendars.get("FX").status(saturday).is_open
    assert calendars.get("FX").status(saturday).next_open == _at("2026-11-22T22:00")  # Sun 17:00 EST
    assert not calendars.get("XNYS").status(saturday).is_open
    assert calendars.get("24/7").status(saturday).is_open


def test_exchange_holidays() -> None:
    thanksgiving = calendars.get("XNYS").status(_at("2026-11-26T16:00"))
    assert not thanksgiving.is_open and thanksgiving.next_open == _at("2026-11-27T14:30")
    assert calendars.get("XNYS").status(_at("2026-11-27T16:00")).next_close == _at("2026-11-27T18:00")  # early close
    green_march = calendars.get("XCAS").status(_at("2026-11-06T10:00"))  # a Friday, Moroccan holiday
    assert not green_march.is_open and green_march.next_open == _at("2026-11-09T08:30")
    assert calendars.get("XCAS").status(_at("2026-11-05T10:00")).is_open


def test_the_day_clocks_change() -> None:
    # US clocks spring forward on Sunday 2026-03-08: FX opens at 17:00 New York = 21:00 UTC
    # (22:00 UTC the week before), and the NYSE opens at 13:30 UTC instead of 14:30.
    assert calendars.get("FX").status(_at("2026-03-08T21:30")).is_open
    assert not calendars.get("FX").status(_at("2026-03-01T21:30")).is_open
    assert calendars.get("XNYS").status(_at("2026-03-09T13:45")).is_open
    assert not calendars.get("XNYS").status(_at("2026-03-06T13:45")).is_open
    # FX closes Friday 17:00 New York on both sides of the change.
    assert calendars.get("FX").status(_at("2026-03-13T20:59")).next_close == _at("2026-03-13T21:00")
    assert calendars.get("FX").status(_at("2026-03-06T21:59")).next_close == _at("2026-03-06T22:00")


def test_cached_status_follows_transitions() -> None:
    cache = calendars.CachedStatus()
    assert cache.status("XNYS", _at("2026-11-27T17:59")).is_open
    assert not cache.status("XNYS", _at("2026-11-27T18:01")).is_open


# --- breaker and failover --------------------------------------------------------------------------


def test_breaker_opens_after_failures_and_recovers_after_trial() -> None:
    now = [0.0]
    b = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=lambda: now[0])
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    now[0] = 5.0
    assert b.state == "half_open" and b.allow()
    b.record_failure()  # the trial failed: open again
    assert b.state == "open"
    now[0] = 10.0
    b.record_success()
    assert b.state == "closed"


class FakeProvider:
    def __init__(self, name: str, symbols: set[str]) -> None:
        self.name = name
        self.symbols = frozenset(symbols)
        self.breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1000)
        self.last_tick_at = None

    async def run(self, emit):  # type: ignore[no-untyped-def]  # pragma: no cover
        pass

    def detail(self) -> str:
        return ""


def test_router_fails_over_and_back_without_a_price_jump() -> None:
    from services.market.providers.simulated import SimulatedProvider

    inst = BY_SYMBOL["BTCUSD"]
    live = FakeProvider("live", {"BTCUSD"})
    sim = SimulatedProvider([inst], seed=1, interval=1.0)
    hub = PriceHub()
    router = PriceRouter(hub, {"BTCUSD": inst}, [live, sim], stale_after=5)  # type: ignore[list-item]
    t0 = datetime(2026, 11, 21, 12, tzinfo=UTC)

    def tick(provider: str, price: str, at: datetime) -> None:
        router.on_tick(Tick("BTCUSD", D(price), D(price) + 1, at, provider))

    tick("simulated", "65000", t0)
    tick("live", "97000", t0)
    assert router.active["BTCUSD"] == "live" and hub.latest["BTCUSD"].bid == D("97000")
    tick("simulated", "65000", t0 + timedelta(seconds=1))  # ignored while live is healthy
    assert hub.latest["BTCUSD"].provider == "live"
    # The live feed stalls: after stale_after the simulation takes over from the last price.
    t1 = t0 + timedelta(seconds=6)
    tick("simulated", "65000", t1)
    assert router.active["BTCUSD"] == "simulated"
    assert abs(sim.paths["BTCUSD"].mid - 97000.5) < 1e-6  # rebased: no jump to 65,000
    sim.step(router.on_tick)
    assert abs(hub.latest["BTCUSD"].mid - D("97000.5")) < 500
    # Live comes back: it takes over again.
    tick("live", "97100", t1 + timedelta(seconds=1))
    assert router.active["BTCUSD"] == "live" and hub.latest["BTCUSD"].bid == D("97100")
    # A breaker opened by errors also hands over.
    live.breaker.record_failure("timeout")
    tick("simulated", "1", t1 + timedelta(seconds=2))
    assert router.active["BTCUSD"] == "simulated"


def test_closed_market_publishes_nothing_but_scripted_prices_do() -> None:
    inst = BY_SYMBOL["AAPL"]
    hub = PriceHub()
    sim = FakeProvider("simulated", {"AAPL"})
    router = PriceRouter(hub, {"AAPL": inst}, [sim])  # type: ignore[list-item]
    saturday = datetime(2026, 11, 21, 15, tzinfo=UTC)
    router.on_tick(Tick("AAPL", D("190"), D("190.02"), saturday, "simulated"))
    assert "AAPL" not in hub.latest
    router.set_price("AAPL", D("200"), D("200.02"))
    assert hub.latest["AAPL"].provider == "scripted"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        [{"symbol": "BTCUSDT", "bidPrice": "x", "askPrice": "1"}],
        [{"symbol": "BTCUSDT", "bidPrice": "2", "askPrice": "1"}],
    ],
)
def test_live_adapter_refuses_malformed_answers(payload: object) -> None:
    from services.market.providers.live import LiveExchangeProvider

    p = LiveExchangeProvider("http://x", {"BTCUSD": BY_SYMBOL["BTCUSD"]})
    with pytest.raises(ValueError):
        p.parse(payload, datetime.now(UTC))
