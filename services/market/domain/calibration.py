"""What each instrument is like in the real market: the table the default feed is drawn from.

Per symbol: a recent reference price level, the annualised volatility, the typical spread in
ticks (and how much wider it is out of hours), and the intraday shape of its activity. The
figures are as of **2025-11-28** (the last full trading week of November 2025), from:

- levels: ECB euro reference rates and Bank Al-Maghrib's dirham fixing (FX), the LBMA Gold
  Price (XAUUSD), CME Group daily settlements (futures; the index CFDs follow the cash indexes
  S&P 500, Nasdaq-100 and the Dow as published by S&P Dow Jones Indices and Nasdaq), the
  Nasdaq / NYSE official closes (US stocks), the Bourse de Casablanca closing prices (IAM, ATW,
  BCP), and Coinbase's BTC-USD / ETH-USD daily closes;
- volatility: implied-volatility indexes where one exists, which is what the market prices for
  the coming month — Cboe VIX (S&P 500, ≈16–17 over 2025), VXN (Nasdaq-100, ≈20), VXD (Dow,
  ≈15), RVX (Russell 2000, ≈22), Cboe OVX / CME CVOL (WTI, ≈30), CME CVOL for EUR (≈7), GBP (≈8),
  JPY (≈10), AUD (≈10), CHF (≈7.5), CAD (≈6), gold CVOL (≈18 after 2025's rally), Deribit DVOL
  (BTC ≈50, ETH ≈65); for single stocks and the dirham, one-year realised volatility of daily
  closes (AAPL 28%, MSFT 24%, GOOG 30%, AMZN 32%, TSLA 60%; Casablanca's large caps ≈18–20%;
  USDMAD, managed against a EUR/USD basket, ≈5%);
- spreads: typical top-of-book spreads in liquid hours of retail prop-firm feeds (ECN FX
  0.6–1.2 pips, gold $0.20, index CFDs 0.5–2 points, one tick in CME futures and US large caps,
  about 1 bp in BTC and 3 bp in ETH), wider out of hours.

Levels drift: re-read them when the feed's prices look stale against the market (the model's
volatility, spreads and shapes change far more slowly). `python -m services.market.calibration`
checks the feed against this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

AS_OF = "2025-11-28"


@dataclass(frozen=True)
class Profile:
    reference: Decimal  # a recent price level
    volatility: float  # annualised, over the market's open time
    spread_ticks: int  # typical spread in liquid hours
    quiet_spread: float  # the spread's multiple out of hours (FX Asia / rollover, futures overnight)
    # The intraday shape of activity (seasonality.py): fx | crypto | us_equity | globex | cse | cfd_index
    session: str


def _p(ref: str, vol: float, spread: int, quiet: float, session: str) -> Profile:
    return Profile(Decimal(ref), vol, spread, quiet, session)


PROFILES: dict[str, Profile] = {
    # FX majors and the dirham (ticks of 0.00001; USDJPY 0.001)
    "EURUSD": _p("1.16000", 0.07, 6, 2.5, "fx"),
    "GBPUSD": _p("1.32300", 0.08, 9, 2.5, "fx"),
    "USDJPY": _p("156.200", 0.10, 8, 2.5, "fx"),
    "AUDUSD": _p("0.65400", 0.10, 8, 2.5, "fx"),
    "USDCHF": _p("0.80400", 0.075, 10, 2.5, "fx"),
    "USDCAD": _p("1.39800", 0.06, 12, 2.5, "fx"),
    "USDMAD": _p("9.21000", 0.05, 300, 2.0, "fx"),
    # Gold spot ($0.01 ticks)
    "XAUUSD": _p("4150.00", 0.18, 20, 2.0, "fx"),
    # Index CFDs (0.1-point ticks), on the CME's index-futures hours
    "US30": _p("47700.0", 0.15, 20, 2.0, "cfd_index"),
    "NAS100": _p("25400.0", 0.20, 10, 2.0, "cfd_index"),
    "SPX500": _p("6850.0", 0.16, 5, 2.0, "cfd_index"),
    # Crypto ($0.01 ticks)
    "BTCUSD": _p("91000.00", 0.50, 900, 1.5, "crypto"),
    "ETHUSD": _p("3000.00", 0.65, 90, 1.5, "crypto"),
    # US large caps ($0.01)
    "AAPL": _p("278.80", 0.28, 1, 1.0, "us_equity"),
    "MSFT": _p("492.00", 0.24, 2, 1.0, "us_equity"),
    "GOOG": _p("320.10", 0.30, 2, 1.0, "us_equity"),
    "AMZN": _p("233.20", 0.32, 2, 1.0, "us_equity"),
    "TSLA": _p("430.10", 0.60, 3, 1.0, "us_equity"),
    # Casablanca (MAD; ATW and BCP in 0.1 MAD ticks)
    "IAM": _p("95.00", 0.18, 10, 1.0, "cse"),
    "ATW": _p("700.0", 0.20, 5, 1.0, "cse"),
    "BCP": _p("290.0", 0.20, 5, 1.0, "cse"),
    # CME Group futures: one tick in liquid hours, two or three overnight
    "ES": _p("6860.00", 0.16, 1, 2.0, "globex"),
    "NQ": _p("25450.00", 0.20, 1, 2.0, "globex"),
    "YM": _p("47800", 0.15, 1, 2.0, "globex"),
    "RTY": _p("2480.0", 0.22, 1, 3.0, "globex"),
    "MES": _p("6860.00", 0.16, 1, 2.0, "globex"),
    "MNQ": _p("25450.00", 0.20, 1, 2.0, "globex"),
    "MYM": _p("47800", 0.15, 1, 2.0, "globex"),
    "M2K": _p("2480.0", 0.22, 1, 3.0, "globex"),
    "CL": _p("58.60", 0.30, 1, 2.0, "globex"),
    "MCL": _p("58.60", 0.30, 1, 2.0, "globex"),
    "GC": _p("4200.0", 0.18, 1, 2.0, "globex"),
    "MGC": _p("4200.0", 0.18, 1, 2.0, "globex"),
}
