"""The rolling 24-hour ticker of a symbol, from its 1-minute candles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.market.domain.candles import Candle

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Ticker:
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal

    @property
    def change(self) -> Decimal:
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        if self.open == 0:
            return Decimal(0)
        return (self.change / self.open * 100).quantize(Decimal("0.01"))


class Rolling24h:
    def __init__(self) -> None:
        self._minutes: dict[str, dict[datetime, Candle]] = {}

    def update(self, candle: Candle) -> None:
        if candle.interval == "1m":
            self._minutes.setdefault(candle.symbol, {})[candle.open_time] = candle

    def ticker(self, symbol: str, now: datetime) -> Ticker | None:
        minutes = self._minutes.get(symbol)
        if not minutes:
            return None
        cutoff = now - WINDOW
        for t in [t for t in minutes if t < cutoff]:
            del minutes[t]
        if not minutes:
            return None
        ordered = [minutes[t] for t in sorted(minutes)]
        return Ticker(
            open=ordered[0].open,
            high=max(c.high for c in ordered),
            low=min(c.low for c in ordered),
            last=ordered[-1].close,
            volume=sum((c.volume for c in ordered), Decimal(0)),
        )
