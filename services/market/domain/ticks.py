"""A price tick and rounding to an instrument's tick size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    bid: Decimal
    ask: Decimal
    time: datetime
    provider: str
    volume: Decimal = Decimal(0)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return ((price / tick).to_integral_value(ROUND_HALF_EVEN) * tick).quantize(tick)
