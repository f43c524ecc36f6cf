"""One challenge's trading session: fills, prices, stops, day rolls and verdicts.

The pure core shared by the service's order path and the `simulate` command. Every
call returns the events it caused (domain/events.py); callers persist or print them.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.events import (
    Breached,
    DayRolled,
    EndOfDay,
    Event,
    RuleWarning,
    StatusChanged,
    TradeExecuted,
)
from services.challenges.domain.positions import (
    ZERO,
    Position,
    apply_fill,
    commission,
    conversion_symbol,
    money,
    unrealized,
)
from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class Spec:
    """What the engine needs to know of an instrument."""

    symbol: str
    contract_size: Decimal
    quote_currency: str
    min_quantity: Decimal
    max_quantity: Decimal
    quantity_step: Decimal
    tick_size: Decimal | None = None  # the quote's precision: prices are shown at its scale


@dataclass(frozen=True)
class Quote:
    bid: Decimal
    ask: Decimal
    time: datetime


class OrderRejected(Exception):
    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


@dataclass
class Stops:
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass
class Session:
    rules: Rules
    account: Account
    specs: dict[str, Spec]
    positions: dict[str, Position] = field(default_factory=dict)
    stops: dict[str, Stops] = field(default_factory=dict)
    quotes: MutableMapping[str, Quote] = field(default_factory=dict)

    # --- valuation ---------------------------------------------------------------------

    def rate(self, symbol: str) -> Decimal:
        """Account-currency value of one unit of the symbol's quote currency."""
        conv = conversion_symbol(self.specs[symbol].quote_currency)
        if conv is None:
            return Decimal(1)
        q = self.quotes.get(conv[0])
        if q is None:
            raise OrderRejected("NO_CONVERSION_RATE", f"no {conv[0]} price to convert P&L")
        mid = (q.bid + q.ask) / 2
        return 1 / mid if conv[1] else mid

    def unrealized_total(self) -> Decimal:
        total = ZERO
        for sym, pos in self.positions.items():
            if pos.is_flat:
                continue
            q = self.quotes.get(sym)
            if q is None:
                continue  # no price yet: valued at entry
            total += unrealized(pos, q.bid, q.ask, self.specs[sym].contract_size, self.rate(sym))
        return total

    def equity(self) -> Decimal:
        return money(self.account.balance + self.unrealized_total())

    @property
    def flat(self) -> bool:
        return all(p.is_flat for p in self.positions.values())

    # --- events -------------------------------------------------------------------------------

    def _roll(self, now: datetime) -> list[Event]:
        before, a = self.account.status, self.account
        events: list[Event] = [
            DayRolled(now, d, a.day_start_balance, a.day_start_equity, self.rules.levels(a))
            for d in engine.roll_day(a, self.rules, now)
        ]
        if before != a.status:
            events.append(self._status_event(before, now, "new trading day"))
        if engine.end_of_day(a, self.rules, now) and a.day is not None:
            events.append(EndOfDay(now, a.day, a.balance, self.rules.levels(a)))
        if not self.flat and self.account.status in (engine.ACTIVE, engine.PAUSED):
            if engine.trading_closed(self.account, self.rules, now) is not None:
                events += self.flatten(now, "flat_by")
        return events

    def _status_event(self, old: str, now: datetime, reason: str) -> StatusChanged:
        return StatusChanged(now, old, self.account.status, reason)

    def _judge(self, now: datetime) -> list[Event]:
        """Re-value equity and apply the verdict: breach (fail or pause + flatten) or warnings."""
        breach, warnings = engine.mark(self.account, self.rules, self.equity(), now)
        events: list[Event] = []
        if breach is not None:
            old = self.account.status
            prices = {s: f"{q.bid}/{q.ask}" for s, q in self.quotes.items() if s in self.positions}
            observed = {**breach.observed, "prices": prices}
            events.append(Breached(now, breach.rule, breach.hard, breach.reason, breach.parameters, observed))
            events += self.flatten(now, f"{breach.rule} breach")
            engine.apply_breach(self.account, self.rules, breach, now)
            events.append(self._status_event(old, now, breach.reason))
        events += [RuleWarning(now, w.rule, w.used_share, w.limit, w.current) for w in warnings]
        return events

    # --- inputs -----------------------------------------------------------------------------------

    def on_tick(self, symbol: str, bid: Decimal, ask: Decimal, now: datetime) -> list[Event]:
        self.quotes[symbol] = Quote(bid, ask, now)
        events = self._roll(now)
        pos = self.positions.get(symbol)
        if self.account.status in engine.ENDED or self.account.status == engine.PENDING:
            return events
        if pos is not None and not pos.is_flat:
            events += self._stops(symbol, now)
        held = any(not p.is_flat for p in self.positions.values())
        if held or events:
            events += self._judge(now)
        return events

    def _check_stops(
        self, symbol: str, resulting: Decimal, stop_loss: Decimal | None, take_profit: Decimal | None
    ) -> None:
        """A stop loss or take profit on the wrong side of the price would fire at the next tick
        (or never mean what the trader meant): refused, as every platform does. Levels compare
        with the price that closes the resulting position — the bid for a long, the ask for a
        short — as `_stops` does."""
        if stop_loss is None and take_profit is None:
            return
        if resulting == 0:
            field = "stop_loss" if stop_loss is not None else "take_profit"
            raise OrderRejected("STOPS_ON_FLAT", "the order leaves no position for a stop loss or take profit", field)
        long = resulting > 0
        q = self.quotes[symbol]
        mark, name = (q.bid, "bid") if long else (q.ask, "ask")
        side = "long" if long else "short"
        if stop_loss is not None and (stop_loss >= mark if long else stop_loss <= mark):
            where = "below" if long else "above"
            raise OrderRejected(
                "STOP_LOSS_WRONG_SIDE", f"a {side}'s stop loss must be {where} the {name} ({mark})", "stop_loss"
            )
        if take_profit is not None and (take_profit <= mark if long else take_profit >= mark):
            where = "above" if long else "below"
            raise OrderRejected(
                "TAKE_PROFIT_WRONG_SIDE", f"a {side}'s take profit must be {where} the {name} ({mark})", "take_profit"
            )

    def _stops(self, symbol: str, now: datetime) -> list[Event]:
        pos, st, q = self.positions[symbol], self.stops.get(symbol), self.quotes[symbol]
        if st is None:
            return []
        px = q.bid if pos.quantity > 0 else q.ask
        long = pos.quantity > 0
        hit = None
        if st.stop_loss is not None and (px <= st.stop_loss if long else px >= st.stop_loss):
            hit = "stop_loss"
        elif st.take_profit is not None and (px >= st.take_profit if long else px <= st.take_profit):
            hit = "take_profit"
        if hit is None:
            return []
        return self._fill(symbol, -pos.quantity, now, reason=hit)

    def validate(self, symbol: str, quantity: Decimal) -> Spec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise OrderRejected("UNKNOWN_SYMBOL", f"unknown symbol {symbol}", "symbol")
        if quantity < spec.min_quantity or quantity > spec.max_quantity:
            raise OrderRejected(
                "QUANTITY_OUT_OF_RANGE",
                f"quantity must be between {spec.min_quantity} and {spec.max_quantity} lots",
                "quantity",
            )
        if quantity % spec.quantity_step != 0:
            raise OrderRejected("QUANTITY_STEP", f"quantity must be a multiple of {spec.quantity_step}", "quantity")
        return spec

    def place(
        self,
        symbol: str,
        side: str,
        quantity: Decimal,
        now: datetime,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> list[Event]:
        """A market order: buy at the ask, sell at the bid."""
        events = self._roll(now)
        if self.account.status != engine.ACTIVE:
            raise OrderRejected("CHALLENGE_NOT_ACTIVE", f"challenge is {self.account.status}")
        why = engine.trading_closed(self.account, self.rules, now)
        if why is not None:
            raise OrderRejected("FLAT_BY", why)
        self.validate(symbol, quantity)
        if symbol not in self.quotes:
            raise OrderRejected("NO_QUOTE", f"no price for {symbol}")
        signed = quantity if side == "BUY" else -quantity
        held = {s: p.quantity for s, p in self.positions.items() if not p.is_flat}
        for rule in self.rules.rules:  # pre-trade limits: refused, never a breach
            why = rule.pre_trade(held, symbol, signed)
            if why is not None:
                raise OrderRejected("POSITION_LIMIT", why)
        self._check_stops(symbol, held.get(symbol, ZERO) + signed, stop_loss, take_profit)
        events += self._fill(symbol, signed, now, reason="order")
        if stop_loss is not None or take_profit is not None:
            self.stops[symbol] = Stops(stop_loss, take_profit)
        events += self._judge(now)
        events += self._maybe_pass(now)
        return events

    def close(self, symbol: str, now: datetime) -> list[Event]:
        events = self._roll(now)
        if self.account.status != engine.ACTIVE:
            raise OrderRejected("CHALLENGE_NOT_ACTIVE", f"challenge is {self.account.status}")
        pos = self.positions.get(symbol)
        if pos is None or pos.is_flat:
            raise OrderRejected("NO_POSITION", f"no open {symbol} position", "symbol")
        events += self._fill(symbol, -pos.quantity, now, reason="close")
        events += self._judge(now)
        events += self._maybe_pass(now)
        return events

    def flatten(self, now: datetime, reason: str) -> list[Event]:
        events: list[Event] = []
        for sym, pos in list(self.positions.items()):
            if not pos.is_flat and sym in self.quotes:  # a symbol never priced stays at its entry
                events += self._fill(sym, -pos.quantity, now, reason=reason)
        return events

    def _fill(self, symbol: str, signed: Decimal, now: datetime, reason: str) -> list[Event]:
        spec, q = self.specs[symbol], self.quotes[symbol]
        price = q.ask if signed > 0 else q.bid
        pos = self.positions.get(symbol, Position(symbol, ZERO, ZERO))
        result = apply_fill(pos, signed, price, spec.contract_size, self.rate(symbol))
        fee = commission(signed, self.rules.commission_per_lot)
        self.account.balance += result.realized - fee
        self.positions[symbol] = result.position
        if result.position.is_flat:
            self.stops.pop(symbol, None)
        new, old = result.position.quantity, pos.quantity
        opened = new != 0 and (old == 0 or (new > 0) != (old > 0) or abs(new) > abs(old))
        engine.record_trade(self.account, self.rules, now, result.realized - fee, opened)
        self.account.equity = self.equity()
        return [
            TradeExecuted(
                now,
                symbol,
                "BUY" if signed > 0 else "SELL",
                abs(signed),
                price,
                fee,
                result.realized,
                reason,
                result.position.quantity,
                self.account.balance,
                self.account.equity,
                money(abs(result.position.quantity) * price * spec.contract_size * self.rate(symbol)),
                self.rules.levels(self.account),
            )
        ]

    def _maybe_pass(self, now: datetime) -> list[Event]:
        if self.account.status != engine.ACTIVE:
            return []
        ok, _ = engine.pass_check(self.account, self.rules, self.flat)
        if not ok:
            return []
        old = self.account.status
        self.account.status = engine.FUNDED if self.rules.final_phase else engine.PASSED
        return [self._status_event(old, now, "all objectives met")]
