"""Does the default feed move like the market? `python -m services.market.calibration`.

Draws a day of the default feed per instrument — the simulated provider's own model
(domain/model.py), stepped as the provider steps it, its ticks kept only while the market is
open as the price router keeps them — aggregates 1-minute candles, and prints, against the
table (domain/calibration.py): the realised volatility (the 1-minute log-returns' standard
deviation annualised over the market's open time), the largest 1-minute move in σ of the
table's per-minute volatility, the spread's median and 95th percentile in ticks, and the
share of the calendar's closed minutes that got a tick (must be 0). `bench/market_calibration.py`
records the same figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from services.market.domain.calendars import CachedStatus
from services.market.domain.instruments import CATALOGUE, Instrument
from services.market.domain.model import OPEN_HOURS_PER_YEAR, CalibratedPath, minute_variance, profile


@dataclass(frozen=True)
class DayFigures:
    symbol: str
    table_vol: float
    realised_vol: float
    open_minutes: int
    max_move_sigma: float
    spread_p50: float
    spread_p95: float
    closed_minutes: int
    closed_minutes_with_ticks: int
    first: float
    last: float
    high: float
    low: float

    @property
    def vol_ratio(self) -> float:
        return self.realised_vol / self.table_vol


def draw_day(inst: Instrument, day: datetime, seed: int = 42, step: float = 1.0) -> DayFigures:
    """One UTC day of `inst` from the model, stepped every `step` seconds."""
    calendars = CachedStatus()
    path = CalibratedPath(inst, seed)
    closes: list[float] = []
    spreads: list[float] = []
    closed = closed_with_ticks = 0
    highs, lows = [], []
    start = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
    for m in range(1440):
        t0 = start + timedelta(minutes=m)
        minute_open = calendars.status(inst.calendar, t0).is_open
        hi = lo = path.mid
        published = 0
        for k in range(int(60 / step)):
            t = t0 + timedelta(seconds=k * step)
            is_open = calendars.status(inst.calendar, t).is_open
            tick = path.step(step, t, is_open)  # as SimulatedProvider steps it
            if not is_open:
                continue  # the price router publishes no tick of a closed market
            published += 1
            spreads.append(float((tick.ask - tick.bid) / inst.tick_size))
            hi, lo = max(hi, path.mid), min(lo, path.mid)
        if not minute_open:
            closed += 1
            closed_with_ticks += published > 0
            continue
        closes.append(path.mid)
        highs.append(hi)
        lows.append(lo)
    returns = np.diff(np.log(closes)) if len(closes) > 1 else np.zeros(1)
    per_year = OPEN_HOURS_PER_YEAR[inst.calendar] * 60
    sigma_min = math.sqrt(minute_variance(inst))
    return DayFigures(
        inst.symbol,
        profile(inst).volatility,
        float(np.std(returns, ddof=1)) * math.sqrt(per_year) if len(returns) > 1 else 0.0,
        len(closes),
        float(np.max(np.abs(returns))) / sigma_min if len(returns) else 0.0,
        statistics.median(spreads) if spreads else 0.0,
        float(np.percentile(spreads, 95)) if spreads else 0.0,
        closed,
        closed_with_ticks,
        closes[0] if closes else float(profile(inst).reference),
        closes[-1] if closes else float(profile(inst).reference),
        max(highs) if highs else 0.0,
        min(lows) if lows else 0.0,
    )


def check(day: datetime, seed: int = 42, step: float = 1.0) -> list[DayFigures]:
    return [draw_day(inst, day, seed, step) for inst in CATALOGUE]


def table(figures: list[DayFigures]) -> list[list[str]]:
    return [
        [
            f.symbol,
            f"{f.table_vol:.1%}",
            f"{f.realised_vol:.1%}",
            f"{f.vol_ratio:.2f}",
            str(f.open_minutes),
            f"{f.max_move_sigma:.1f}",
            f"{f.spread_p50:g} / {f.spread_p95:g}",
            f"{(f.high / f.low - 1) if f.low else 0:.2%}",
            f"{f.closed_minutes_with_ticks}/{f.closed_minutes}",
        ]
        for f in figures
    ]


COLUMNS = [
    "symbol",
    "table σ",
    "realised σ",
    "ratio",
    "open min",
    "max 1m move (σ)",
    "spread ticks p50 / p95",
    "day's range",
    "closed min with ticks",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--day", default="2026-12-02", help="a UTC date (default: a Wednesday)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--step", type=float, default=2.0, help="seconds between the model's steps")
    args = ap.parse_args()
    figures = check(datetime.fromisoformat(args.day).replace(tzinfo=UTC), args.seed, args.step)
    rows = table(figures)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
