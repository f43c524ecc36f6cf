"""Funded-account metrics equal the reference library (quantstats) on generated series."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.risk.domain.metrics import TradeAccumulator, _longest_run, compute
from services.risk.metrics import BadInput, read_trades

warnings.filterwarnings("ignore", module="quantstats")
qs = pytest.importorskip("quantstats")


def _trades(seed: int, days: int, per_day: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    n = days * per_day
    t = (
        start
        + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
        + pd.to_timedelta(np.tile(np.arange(per_day), days), unit="m")
    )
    pnl = np.round(rng.normal(20, 400, n), 2)
    pnl[rng.random(n) < 0.05] = 0.0  # some breakeven trades
    sym = rng.choice(["EURUSD", "BTCUSD", "NAS100"], n)
    return pd.DataFrame({"closed_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "pnl": pnl, "symbol": sym})


def _ours(df: pd.DataFrame, initial: float = 100_000.0) -> dict:
    acc = read_trades(io.StringIO(df.to_csv(index=False)))
    return compute(acc, initial)


def _reference_returns(df: pd.DataFrame, initial: float) -> pd.Series:
    daily = df.assign(day=pd.to_datetime(df["closed_at"]).dt.floor("D")).groupby("day")["pnl"].sum()
    equity = initial + daily.cumsum()
    curve = pd.concat([pd.Series([initial], index=[daily.index[0] - pd.Timedelta(days=1)]), equity])
    return curve.pct_change().dropna()


@pytest.mark.parametrize("seed,days,per_day", [(1, 250, 4), (2, 60, 1), (3, 500, 10), (4, 30, 25), (5, 80, 1)])
def test_metrics_equal_quantstats(seed: int, days: int, per_day: int) -> None:
    df = _trades(seed, days, per_day)
    ours = _ours(df)
    r = _reference_returns(df, 100_000.0)
    assert ours["sharpe"] == pytest.approx(qs.stats.sharpe(r), rel=1e-9)
    assert ours["sortino"] == pytest.approx(qs.stats.sortino(r), rel=1e-9)
    assert ours["max_drawdown_pct"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9)
    pnl = pd.Series(df["pnl"].to_numpy())
    assert ours["win_rate"] == pytest.approx(qs.stats.win_rate(pnl, prepare_returns=False), rel=1e-12)
    assert ours["profit_factor"] == pytest.approx(qs.stats.profit_factor(pnl, prepare_returns=False), rel=1e-9)
    assert float(ours["expectancy"]) == pytest.approx(pnl.mean(), abs=0.005)
    assert ours["total_trades"] == len(df)
    days_pnl = df.assign(day=pd.to_datetime(df["closed_at"]).dt.floor("D")).groupby("day")["pnl"].sum().round(2)
    win_days = qs.stats.win_rate(days_pnl, prepare_returns=False)  # Win Days: breakeven days left out
    assert ours["profitable_days_pct"] == pytest.approx(win_days, rel=1e-12)
    assert ours["total_return"] == pytest.approx((1 + r).prod() - 1, rel=1e-9)
    # Per-symbol figures add up to the whole, to the cent.
    assert sum(float(s["pnl"]) for s in ours["by_symbol"]) == pytest.approx(pnl.sum(), abs=0.005)


def test_drawdown_date_amount_and_recovery() -> None:
    df = pd.DataFrame(
        {"closed_at": [f"2024-01-0{d}T10:00:00Z" for d in range(1, 7)], "pnl": [1000, -3000, -500, 1500, 2500, 100]}
    )
    m = _ours(df)
    # Equity: 100000, 101000, 98000, 97500, 99000, 101500, 101600: trough on the 3rd, back above 101000 on the 5th.
    assert m["max_drawdown_amount"] == "-3500.00" and m["max_drawdown_date"] == "2024-01-03"
    assert m["max_drawdown_pct"] == pytest.approx(97500 / 101000 - 1)
    assert m["time_to_recovery_days"] == 2 and m["recovered"] is True
    assert m["longest_losing_streak_days"] == 2 and m["longest_losing_streak_trades"] == 2
    assert m["largest_winning_day"] == "2500.00" and m["largest_losing_day"] == "-3000.00"
    unrecovered = _ours(df.iloc[:4])
    assert unrecovered["recovered"] is False and unrecovered["time_to_recovery_days"] is None


def test_edge_cases_have_defined_values() -> None:
    empty = compute(TradeAccumulator(), 100_000.0)
    assert empty["total_trades"] == 0 and empty["win_rate"] == 0.0 and empty["profit_factor"] == 0.0
    assert empty["sharpe"] == 0.0 and empty["max_drawdown_pct"] == 0.0 and empty["expectancy"] == "0.00"
    no_losses = _ours(pd.DataFrame({"closed_at": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"], "pnl": [10, 20]}))
    assert no_losses["profit_factor"] == math.inf and no_losses["average_loss"] == "0.00"
    assert no_losses["sortino"] == math.inf and no_losses["max_drawdown_pct"] == 0.0
    one_day = _ours(pd.DataFrame({"closed_at": ["2024-01-01T09:00:00Z"] * 3, "pnl": [100, -50, 0]}))
    assert one_day["sharpe"] == 0.0 and one_day["win_rate"] == 0.5 and one_day["profitable_days_pct"] == 1.0
    flat = _ours(pd.DataFrame({"closed_at": [f"2024-01-0{d}T00:00:00Z" for d in range(1, 5)], "pnl": [0] * 4}))
    assert flat["sharpe"] == 0.0 and flat["sortino"] == 0.0 and flat["win_rate"] == 0.0


def test_chunked_reading_equals_whole() -> None:
    df = _trades(9, 40, 7)
    whole = TradeAccumulator()
    from services.risk.metrics import _chunk_arrays

    whole.add(*_chunk_arrays(df))
    chunked = TradeAccumulator()
    for k in range(0, len(df), 13):
        chunked.add(*_chunk_arrays(df.iloc[k : k + 13]))
    assert compute(whole, 1e5) == compute(chunked, 1e5)


def test_longest_run_across_chunks() -> None:
    rng = np.random.default_rng(5)
    mask = rng.random(1000) < 0.6
    expected = max((len(s) for s in "".join("1" if m else "0" for m in mask).split("0")), default=0)
    longest, carry = 0, 0
    for k in range(0, 1000, 37):
        got, carry = _longest_run(mask[k : k + 37], carry)
        longest = max(longest, got)
    assert longest == expected


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(BadInput):
        read_trades(io.StringIO("when,pnl\n2024-01-01,1\n"))
    with pytest.raises(BadInput):
        read_trades(io.StringIO("closed_at,pnl\n2024-01-01,abc\n"))


def test_command_line(tmp_path: Path) -> None:
    trades = tmp_path / "t.csv"
    _trades(3, 20, 2).to_csv(trades, index=False)
    equity = tmp_path / "e.csv"
    pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=20).strftime("%Y-%m-%d"), "equity": 50_000 + np.arange(20) * 10.0}
    ).to_csv(equity, index=False)
    out = subprocess.run(
        [sys.executable, "-m", "services.risk.metrics", "--trades", str(trades), "--equity", str(equity)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = json.loads(out)
    assert m["total_trades"] == 40 and m["max_drawdown_pct"] == 0.0 and m["sharpe"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "services.risk.metrics", "--trades", str(equity)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "closed_at" in bad.stderr
