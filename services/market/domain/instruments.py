"""The instrument catalogue: what can be traded, in what units, on which calendar.

Contract size is the units of the underlying in one lot (100,000 for FX majors,
100 oz for gold, 1 for crypto and stocks); for index CFDs and futures it is the multiplier,
the quote currency's value of a one-point move per lot or contract (ES: $50 a point).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from services.market.domain.calibration import PROFILES

D = Decimal


@dataclass(frozen=True)
class Instrument:
    symbol: str
    display_name: str
    asset_class: str  # FX | METAL | INDEX | CRYPTO | STOCK | FUTURE
    quote_currency: str
    tick_size: Decimal
    contract_size: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    quantity_step: Decimal
    calendar: str  # FX | 24/7 | XNYS | XCAS | CME | GLOBEX
    exchange: str
    # The market's character (set from calibration.py below): a recent price level, the
    # annualised volatility, the typical spread in ticks.
    start_price: Decimal
    volatility: float
    spread_ticks: int


def _fx(sym: str, name: str, quote: str, price: str, vol: float, tick: str = "0.00001") -> Instrument:
    return Instrument(
        sym, name, "FX", quote, D(tick), D(100000), D("0.01"), D(50), D("0.01"), "FX", "OTC", D(price), vol, 10
    )


def _stock(sym: str, name: str, exch: str, cal: str, ccy: str, price: str, vol: float, tick: str = "0.01"):
    return Instrument(sym, name, "STOCK", ccy, D(tick), D(1), D(1), D(10000), D(1), cal, exch, D(price), vol, 2)


def _future(sym: str, name: str, exch: str, multiplier: str, tick: str, price: str, vol: float) -> Instrument:
    """A CME Group futures contract: whole contracts, the Globex session (CME contract specs)."""
    return Instrument(
        sym, name, "FUTURE", "USD", D(tick), D(multiplier), D(1), D(50), D(1), "GLOBEX", exch, D(price), vol, 1
    )


# CME Group contract specifications: multiplier ($ per point) and minimum tick.
FUTURES: tuple[Instrument, ...] = (
    _future("ES", "E-mini S&P 500", "CME", "50", "0.25", "5200.00", 0.16),
    _future("NQ", "E-mini Nasdaq-100", "CME", "20", "0.25", "18000.00", 0.2),
    _future("YM", "E-mini Dow ($5)", "CBOT", "5", "1", "39000", 0.15),
    _future("RTY", "E-mini Russell 2000", "CME", "50", "0.1", "2050.0", 0.22),
    _future("MES", "Micro E-mini S&P 500", "CME", "5", "0.25", "5200.00", 0.16),
    _future("MNQ", "Micro E-mini Nasdaq-100", "CME", "2", "0.25", "18000.00", 0.2),
    _future("MYM", "Micro E-mini Dow", "CBOT", "0.5", "1", "39000", 0.15),
    _future("M2K", "Micro E-mini Russell 2000", "CME", "5", "0.1", "2050.0", 0.22),
    _future("CL", "Crude Oil (WTI)", "NYMEX", "1000", "0.01", "78.00", 0.35),
    _future("MCL", "Micro WTI Crude Oil", "NYMEX", "100", "0.01", "78.00", 0.35),
    _future("GC", "Gold", "COMEX", "100", "0.1", "2350.0", 0.15),
    _future("MGC", "Micro Gold", "COMEX", "10", "0.1", "2350.0", 0.15),
)

_LISTED: tuple[Instrument, ...] = (
    _fx("EURUSD", "Euro / US Dollar", "USD", "1.08500", 0.07),
    _fx("GBPUSD", "British Pound / US Dollar", "USD", "1.27000", 0.08),
    _fx("USDJPY", "US Dollar / Japanese Yen", "JPY", "150.000", 0.09, tick="0.001"),
    _fx("AUDUSD", "Australian Dollar / US Dollar", "USD", "0.66000", 0.09),
    _fx("USDCHF", "US Dollar / Swiss Franc", "CHF", "0.88000", 0.07),
    _fx("USDCAD", "US Dollar / Canadian Dollar", "CAD", "1.36000", 0.06),
    _fx("USDMAD", "US Dollar / Moroccan Dirham", "MAD", "10.00000", 0.05),
    Instrument(
        "XAUUSD",
        "Gold / US Dollar",
        "METAL",
        "USD",
        D("0.01"),
        D(100),
        D("0.01"),
        D(20),
        D("0.01"),
        "FX",
        "OTC",
        D("2350.00"),
        0.15,
        30,
    ),
    Instrument(
        "US30",
        "Dow Jones 30 (CFD)",
        "INDEX",
        "USD",
        D("0.1"),
        D(1),
        D("0.1"),
        D(100),
        D("0.1"),
        "CME",
        "CFD",
        D("39000.0"),
        0.15,
        20,
    ),
    Instrument(
        "NAS100",
        "Nasdaq 100 (CFD)",
        "INDEX",
        "USD",
        D("0.1"),
        D(1),
        D("0.1"),
        D(100),
        D("0.1"),
        "CME",
        "CFD",
        D("18000.0"),
        0.2,
        15,
    ),
    Instrument(
        "SPX500",
        "S&P 500 (CFD)",
        "INDEX",
        "USD",
        D("0.1"),
        D(1),
        D("0.1"),
        D(100),
        D("0.1"),
        "CME",
        "CFD",
        D("5200.0"),
        0.16,
        5,
    ),
    Instrument(
        "BTCUSD",
        "Bitcoin / US Dollar",
        "CRYPTO",
        "USD",
        D("0.01"),
        D(1),
        D("0.001"),
        D(10),
        D("0.001"),
        "24/7",
        "CRYPTO",
        D("65000.00"),
        0.6,
        1000,
    ),
    Instrument(
        "ETHUSD",
        "Ether / US Dollar",
        "CRYPTO",
        "USD",
        D("0.01"),
        D(1),
        D("0.01"),
        D(100),
        D("0.01"),
        "24/7",
        "CRYPTO",
        D("3200.00"),
        0.7,
        100,
    ),
    _stock("AAPL", "Apple Inc.", "NASDAQ", "XNYS", "USD", "190.00", 0.25),
    _stock("MSFT", "Microsoft Corp.", "NASDAQ", "XNYS", "USD", "420.00", 0.25),
    _stock("GOOG", "Alphabet Inc. Class C", "NASDAQ", "XNYS", "USD", "170.00", 0.28),
    _stock("AMZN", "Amazon.com Inc.", "NASDAQ", "XNYS", "USD", "180.00", 0.3),
    _stock("TSLA", "Tesla Inc.", "NASDAQ", "XNYS", "USD", "180.00", 0.55),
    _stock("IAM", "Itissalat Al-Maghrib (Maroc Telecom)", "CSE", "XCAS", "MAD", "95.00", 0.2),
    _stock("ATW", "Attijariwafa Bank", "CSE", "XCAS", "MAD", "500.00", 0.18, tick="0.1"),
    _stock("BCP", "Banque Centrale Populaire", "CSE", "XCAS", "MAD", "280.00", 0.18, tick="0.1"),
    *FUTURES,
)


def _calibrated(inst: Instrument) -> Instrument:
    p = PROFILES.get(inst.symbol)
    if p is None:
        return inst
    return replace(inst, start_price=p.reference, volatility=p.volatility, spread_ticks=p.spread_ticks)


CATALOGUE: tuple[Instrument, ...] = tuple(_calibrated(i) for i in _LISTED)
BY_SYMBOL = {i.symbol: i for i in CATALOGUE}
