"""How a rule says what it asks, in the trader's words: money as money, times in the pack's
zone. Each kind's `describe` writes its own sentence from its resolved parameters, so the
console shows what the server judges by instead of guessing from a pack's raw parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from decimal import Decimal

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


@dataclass(frozen=True)
class Wording:
    currency: str
    timezone: str
    reset_time: time
    initial_balance: Decimal

    def money(self, amount: Decimal) -> str:
        text = f"{amount.quantize(Decimal('0.01')):,.2f}"
        sign = SYMBOLS.get(self.currency)
        return f"{sign}{text}" if sign else f"{text} {self.currency}"

    def clock(self, at: time | None = None) -> str:
        t = at or self.reset_time
        return f"{t.strftime('%H:%M')} {self.timezone}"


def pct(share: Decimal) -> str:
    """0.5 → "50%", 0.333 → "33.3%"."""
    return f"{(share * 100).normalize():f}%"


def number(d: Decimal) -> str:
    return f"{d.normalize():f}"


def at_or_past(comparator: str) -> str:
    return "at" if comparator == "touch" else "below"
