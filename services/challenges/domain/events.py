"""What happened to a challenge, as typed events (the engine's output).

The session returns these; the ledger persists them (a trade row per `TradeExecuted`, a breach
row per `Breached`, …) and writes each one's `payload()` to the outbox, which is the JSON that
risk, the event streams and `simulate` read. A consumer dispatches on the class, never on a
string; the `type` names the event on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

Limits = dict[str, dict[str, str]]  # rule kind -> {"floor": …, "limit": …} (Rules.levels)


@dataclass
class Event:
    type: ClassVar[str]
    time: datetime

    def payload(self) -> dict[str, Any]:
        """The event as the outbox stores it and consumers read it."""
        return {"type": self.type, "time": self.time.isoformat(), **self._fields()}

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class TradeExecuted(Event):
    type = "trade_executed"
    symbol: str
    side: str  # BUY | SELL
    quantity: Decimal
    price: Decimal
    commission: Decimal
    realized_pnl: Decimal
    reason: str  # order | close | stop_loss | take_profit | flat_by | cancelled | "<rule> breach"
    position: Decimal  # the net position after the fill
    balance: Decimal
    equity: Decimal
    notional: Decimal  # open exposure in the account currency after the fill
    limits: Limits
    trade_id: str | None = None  # set when the trade row is written

    def _fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "symbol": self.symbol,
            "side": self.side,
            "quantity": str(self.quantity),
            "price": str(self.price),
            "commission": str(self.commission),
            "realized_pnl": str(self.realized_pnl),
            "reason": self.reason,
            "position": str(self.position),
            "balance": str(self.balance),
            "equity": str(self.equity),
            "notional": str(self.notional),
            "limits": self.limits,
        }
        if self.trade_id is not None:
            d["trade_id"] = self.trade_id
        return d


@dataclass
class Breached(Event):
    type = "breach"
    rule: str
    hard: bool
    reason: str
    parameters: dict[str, str]
    observed: dict[str, Any]  # the rule's values, and `prices` of the positions held

    def _fields(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "hard": self.hard,
            "reason": self.reason,
            "parameters": self.parameters,
            "observed": self.observed,
        }


@dataclass
class StatusChanged(Event):
    type = "status_changed"
    old: str | None  # `from` on the wire; None when the challenge is created
    to: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)  # the created event's plan and limits
    next_challenge_id: str | None = None  # set when a pass opens the next phase

    def _fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"from": self.old, "to": self.to, "reason": self.reason, **self.details}
        if self.next_challenge_id is not None:
            d["next_challenge_id"] = self.next_challenge_id
        return d


@dataclass
class RuleWarning(Event):
    type = "rule_warning"
    rule: str
    used_share: Decimal
    limit: Decimal
    current: Decimal

    def _fields(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "used_share": str(self.used_share.quantize(Decimal("0.0001"))),
            "limit": str(self.limit),
            "current": str(self.current.quantize(Decimal("0.01"))),
        }


@dataclass
class DayRolled(Event):
    type = "day_rolled"
    trading_day: date
    day_start_balance: Decimal
    day_start_equity: Decimal
    limits: Limits  # the new day's floors

    def _fields(self) -> dict[str, Any]:
        return {
            "trading_day": self.trading_day.isoformat(),
            "day_start_balance": str(self.day_start_balance),
            "day_start_equity": str(self.day_start_equity),
            "limits": self.limits,
        }


@dataclass
class EndOfDay(Event):
    type = "end_of_day"
    trading_day: date
    balance: Decimal
    limits: Limits  # the drawdown's floor from now on

    def _fields(self) -> dict[str, Any]:
        return {"trading_day": self.trading_day.isoformat(), "balance": str(self.balance), "limits": self.limits}


@dataclass
class EquityUpdated(Event):
    type = "equity_updated"
    equity: str  # the index's float equity rounded to the cent: informational

    def _fields(self) -> dict[str, Any]:
        return {"equity": self.equity}


@dataclass
class OrderRefused(Event):
    """A refused order (only `simulate` reports these; the service answers the caller)."""

    type = "order_rejected"
    symbol: str
    reason: str
    message: str

    def _fields(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "reason": self.reason, "message": self.message}
