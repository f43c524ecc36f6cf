"""The default feed's model (issue 27) on seeded draws: each instrument's realised volatility
near its table figure, fat tails and clustering, spreads that widen out of hours and never
cross, no tick of a closed market, and the same path for the same seed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.market.calibration import draw_day
from services.market.domain import seasonality
from services.market.domain.calibration import PROFILES
from services.market.domain.instruments import BY_SYMBOL, CATALOGUE
from services.market.domain.model import CalibratedPath, minute_variance

WEDNESDAY = datetime(2026, 12, 2, tzinfo=UTC)


def test_every_instrument_has_a_calibration_and_the_catalogue_uses_it() -> None:
    assert set(PROFILES) == {i.symbol for i in CATALOGUE}
    for inst in CATALOGUE:
        p = PROFILES[inst.symbol]
        assert (inst.start_price, inst.volatility, inst.spread_ticks) == (p.reference, p.volatility, p.spread_ticks)


@pytest.mark.parametrize(
    "symbol", ["EURUSD", "USDJPY", "XAUUSD", "BTCUSD", "ETHUSD", "AAPL", "TSLA", "ES", "CL", "IAM"]
)
def test_a_days_realised_volatility_is_near_the_table(symbol: str) -> None:
    day = draw_day(BY_SYMBOL[symbol], WEDNESDAY, seed=7, step=5.0)
    assert 1 / 1.3 < day.vol_ratio < 1.3, (symbol, day.realised_vol, day.table_vol)
    assert day.closed_minutes_with_ticks == 0
    # Levels stay near the reference: a day moves a few percent at most, even for crypto.
    assert abs(day.last / float(PROFILES[symbol].reference) - 1) < 0.08


def test_returns_have_fat_tails_and_their_variance_clusters() -> None:
    inst = BY_SYMBOL["EURUSD"]
    path = CalibratedPath(inst, seed=3)
    t = WEDNESDAY.replace(hour=13)  # the overlap: a steady activity level
    minute = []
    for _ in range(20_000):
        r = 0.0
        for _ in range(6):
            r += path.move(10.0, t)
            t += timedelta(seconds=10)
        minute.append(r)
        t = t.replace(hour=13) if t.hour >= 16 else t
    z = np.array(minute) / math.sqrt(minute_variance(inst) * seasonality.activity("fx", WEDNESDAY.replace(hour=13)))
    kurtosis = float(np.mean(z**4) / np.mean(z**2) ** 2)
    assert kurtosis > 3.5  # a Gaussian's is 3
    sq = z**2
    autocorrelation = float(np.corrcoef(sq[:-1], sq[1:])[0, 1])
    assert autocorrelation > 0.05  # a constant-σ walk's is ≈ 0


def test_fx_is_quiet_in_asia_busy_at_the_overlap_and_wider_at_night() -> None:
    asia, overlap = WEDNESDAY.replace(hour=2), WEDNESDAY.replace(hour=14)
    assert seasonality.activity("fx", overlap) > 2.5 * seasonality.activity("fx", asia)
    assert seasonality.quiet("fx", asia) and not seasonality.quiet("fx", overlap)
    # US stocks: the open busier than lunch (New York time).
    open_, lunch = datetime(2026, 12, 2, 14, 35, tzinfo=UTC), datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    assert seasonality.activity("us_equity", open_) > 2.5 * seasonality.activity("us_equity", lunch)
    path = CalibratedPath(BY_SYMBOL["EURUSD"], seed=1)
    night = [path.spread_ticks(asia) for _ in range(500)]
    day = [path.spread_ticks(overlap) for _ in range(500)]
    assert np.median(night) > 1.8 * np.median(day)


def test_ticks_never_cross_and_a_closed_market_does_not_move() -> None:
    for symbol in ("ES", "AAPL", "EURUSD", "BTCUSD"):
        path = CalibratedPath(BY_SYMBOL[symbol], seed=11)
        t = WEDNESDAY
        for _ in range(2_000):
            tick = path.step(30.0, t)
            assert tick.bid < tick.ask and tick.bid > 0
            t += timedelta(seconds=30)
    path = CalibratedPath(BY_SYMBOL["AAPL"], seed=11)
    before = path.mid
    path.step(60.0, WEDNESDAY, is_open=False)
    assert path.mid == before


def test_the_same_seed_draws_the_same_path() -> None:
    a, b, c = (CalibratedPath(BY_SYMBOL["BTCUSD"], s) for s in (5, 5, 6))
    walk = [[p.step(1.0, WEDNESDAY + timedelta(seconds=i)).bid for i in range(50)] for p in (a, b, c)]
    assert walk[0] == walk[1] != walk[2]
