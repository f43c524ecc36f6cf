"""Metrics for any trade history: `python -m services.risk.metrics`.

    python -m services.risk.metrics --trades TRADES.csv [--equity EQUITY.csv] [--initial-balance 100000]

TRADES.csv: `closed_at,pnl` (+ optional `symbol`), in time order; EQUITY.csv: `date,equity`.
Without an equity file the daily equity is derived from the trades (initial balance +
cumulative daily P&L). Prints the metrics as JSON. The trades file is read in chunks, so
its size does not matter; the same domain code serves the live metrics and the upload RPC.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from services.risk.domain.metrics import TradeAccumulator, compute

CHUNK_ROWS = 200_000


class BadInput(ValueError):
    pass


def _chunk_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    missing = {"closed_at", "pnl"} - set(df.columns)
    if missing:
        raise BadInput(f"trades need columns closed_at,pnl (missing {', '.join(sorted(missing))})")
    try:
        ts = pd.to_datetime(df["closed_at"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise BadInput(f"bad closed_at: {exc}") from None
    pnl = pd.to_numeric(df["pnl"], errors="coerce")
    if pnl.isna().any() or ts.isna().any():
        raise BadInput("every row needs a closed_at time and a numeric pnl")
    days = ts.values.astype("datetime64[D]").astype(np.int64)
    cents = np.round(pnl.to_numpy(dtype=np.float64) * 100).astype(np.int64)
    symbols = df["symbol"].astype(str).to_numpy() if "symbol" in df.columns else None
    return days, cents, symbols


def accumulate(chunks: Iterable[pd.DataFrame]) -> TradeAccumulator:
    acc = TradeAccumulator()
    for df in chunks:
        acc.add(*_chunk_arrays(df))
    return acc


def read_trades(source: str | Path | IO[str]) -> TradeAccumulator:
    try:
        return accumulate(pd.read_csv(source, chunksize=CHUNK_ROWS, dtype={"pnl": str, "closed_at": str}))
    except pd.errors.EmptyDataError:
        return TradeAccumulator()
    except pd.errors.ParserError as exc:
        raise BadInput(f"not a CSV file: {exc}") from None


def read_equity(source: str | Path | IO[str]) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(source)
    if {"date", "equity"} - set(df.columns):
        raise BadInput("equity needs columns date,equity")
    days = pd.to_datetime(df["date"], utc=True, format="ISO8601").values.astype("datetime64[D]").astype(np.int64)
    values = pd.to_numeric(df["equity"], errors="coerce")
    if values.isna().any():
        raise BadInput("every equity row needs a number")
    order = np.argsort(days, kind="stable")
    return days[order], values.to_numpy(dtype=np.float64)[order]


def to_json(metrics: dict[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v

    return json.dumps({k: clean(v) for k, v in metrics.items()}, indent=2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.risk.metrics", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=Path, required=True)
    ap.add_argument("--equity", type=Path)
    ap.add_argument("--initial-balance", type=float)
    args = ap.parse_args(argv)
    try:
        acc = read_trades(args.trades)
        if args.equity:
            days, values = read_equity(args.equity)
            initial = args.initial_balance if args.initial_balance is not None else float(values[0])
            metrics = compute(acc, initial, days, values)
        else:
            metrics = compute(acc, args.initial_balance if args.initial_balance is not None else 100_000.0)
    except (BadInput, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_json(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BadInput", "accumulate", "io", "read_equity", "read_trades", "to_json"]
