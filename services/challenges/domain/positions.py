"""Net positions and P&L in exact decimals.

Quantities are signed lots (positive long, negative short). One lot is
`contract_size` units; P&L in the quote currency is lots × contract size × price
move, converted to the account currency at `rate` (account units per quote unit).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: Decimal  # signed lots
    avg_price: Decimal

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0


@dataclass(frozen=True)
class FillResult:
    position: Position
    realized: Decimal  # account currency, before commission, rounded to cents
    closed_quantity: Decimal  # lots closed by this fill (for win/loss stats)


def apply_fill(
    pos: Position, side_qty: Decimal, price: Decimal, contract_size: Decimal, rate: Decimal = Decimal(1)
) -> FillResult:
    """Apply a fill of `side_qty` signed lots (+ buy, − sell) at `price`."""
    if side_qty == 0:
        raise ValueError("fill quantity must not be zero")
    q = pos.quantity
    if q == 0 or (q > 0) == (side_qty > 0):  # open or add: weighted average price
        new_q = q + side_qty
        avg = (abs(q) * pos.avg_price + abs(side_qty) * price) / abs(new_q)
        return FillResult(Position(pos.symbol, new_q, avg), ZERO, ZERO)
    closing = min(abs(q), abs(side_qty))
    direction = Decimal(1) if q > 0 else Decimal(-1)
    realized = money(closing * (price - pos.avg_price) * direction * contract_size * rate)
    new_q = q + side_qty
    if new_q == 0:
        return FillResult(Position(pos.symbol, ZERO, ZERO), realized, closing)
    if (new_q > 0) == (q > 0):  # reduced: the average price of what is left is unchanged
        return FillResult(Position(pos.symbol, new_q, pos.avg_price), realized, closing)
    return FillResult(Position(pos.symbol, new_q, price), realized, closing)  # flipped


def unrealized(
    pos: Position, bid: Decimal, ask: Decimal, contract_size: Decimal, rate: Decimal = Decimal(1)
) -> Decimal:
    """Floating P&L at the price the position would close at (bid for longs, ask for shorts)."""
    if pos.quantity == 0:
        return ZERO
    mark = bid if pos.quantity > 0 else ask
    return pos.quantity * (mark - pos.avg_price) * contract_size * rate


def commission(lots: Decimal, per_lot: Decimal) -> Decimal:
    return money(abs(lots) * per_lot)


def conversion_symbol(quote_currency: str, account_currency: str = "USD") -> tuple[str, bool] | None:
    """The market symbol giving the rate, and whether to invert it (USDJPY → 1/rate)."""
    if quote_currency == account_currency:
        return None
    return f"{account_currency}{quote_currency}", True
