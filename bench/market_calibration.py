"""The default feed against its calibration table (issue 27): a day of 1-minute candles per
instrument from the simulated provider's model, realised volatility vs the table, the largest
1-minute move in σ, spreads in ticks, closed minutes with ticks (must be 0).

    python -m bench.market_calibration [--day 2026-12-02] [--seed 42] [--step 1]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bench.report import git_rev, save
from services.market import calibration
from services.market.domain.calibration import AS_OF


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--day", default="2026-12-02")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--step", type=float, default=1.0)
    args = ap.parse_args()
    figures = calibration.check(datetime.fromisoformat(args.day).replace(tzinfo=UTC), args.seed, args.step)
    rows = calibration.table(figures)
    for r in rows:
        print(r)
    ratios = [f.vol_ratio for f in figures]
    save(
        "market_calibration",
        {
            "command": f"python -m bench.market_calibration --day {args.day} --seed {args.seed} --step {args.step}",
            "commit": git_rev(),
            "notes": f"One UTC day ({args.day}, a Wednesday) of the simulated provider's model per instrument, "
            f"stepped every {args.step:g} s as the provider steps it; ticks kept only while the calendar is open, "
            "as the price router keeps them. Realised σ: the 1-minute log-returns' standard deviation annualised "
            "over the market's open time; max 1m move in σ of the table's per-minute volatility; spreads in ticks "
            f"over every published tick; the day's range high/low − 1. Table as of {AS_OF} "
            "(services/market/domain/calibration.py, sources there).",
            "results": {
                "min_vol_ratio": min(ratios),
                "max_vol_ratio": max(ratios),
                "closed_minutes_with_ticks": sum(f.closed_minutes_with_ticks for f in figures),
                "max_move_sigma": max(f.max_move_sigma for f in figures),
            },
            "tables": [{"title": "A day of the default feed", "columns": calibration.COLUMNS, "rows": rows}],
        },
    )


if __name__ == "__main__":
    main()
