"""Maximum position: contracts (or lots) held at once, in total and optionally per symbol, with
micro contracts weighted against the minis (Topstep: 5 / 10 / 15 minis on the 50K / 100K /
150K Combine, micros 10:1 — 1 MES counts as 0.1 ES). An order that would take the account past
it is refused before it fills (FAILED_PRECONDITION `POSITION_LIMIT`, the limit in the message);
it is never a breach. An order that reduces the position is always allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.challenges.domain.rules.base import Context, Params, Rule
from services.challenges.domain.rules.wording import Wording, number

# CME micro contracts, one tenth of their mini.
MICROS = {"MES": "0.1", "MNQ": "0.1", "MYM": "0.1", "M2K": "0.1", "MCL": "0.1", "MGC": "0.1"}


@dataclass(frozen=True)
class MaxPosition(Rule):
    kind = "max_position"
    total: Decimal
    per_symbol: Decimal | None
    weights: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def build(cls, params: Params, ctx: Context) -> MaxPosition:
        total = params.decimal("contracts") or Decimal(1)
        per_symbol = params.decimal("per_symbol")
        raw = params.raw.get("weights")  # a map of symbols, never a value per account size
        params.read.add("weights")
        weights: dict[str, Decimal] = {k: Decimal(v) for k, v in MICROS.items()}
        if raw is not None:
            if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
                params.violations[f"{params.path}.weights"] = "must map symbols to weights"
            else:
                for k, v in raw.items():
                    try:
                        weights[k] = Decimal(str(v))
                    except ArithmeticError:
                        params.violations[f"{params.path}.weights.{k}"] = "must be a number"
        params.done()
        return cls(total, per_symbol, weights)

    def describe(self, w: Wording) -> str:
        micros = sorted({str(v) for v in self.weights.values() if v < 1})
        weighted = f" (a micro counts as {' or '.join(micros)})" if micros else ""
        per = f", at most {number(self.per_symbol)} in one symbol" if self.per_symbol is not None else ""
        return f"At most {number(self.total)} contracts or lots open at once{per}{weighted}"

    def to_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"contracts": str(self.total), "weights": {k: str(v) for k, v in self.weights.items()}}
        if self.per_symbol is not None:
            out["per_symbol"] = str(self.per_symbol)
        return out

    def weight(self, symbol: str) -> Decimal:
        return self.weights.get(symbol, Decimal(1))

    def pre_trade(self, held: Mapping[str, Decimal], symbol: str, signed: Decimal) -> str | None:
        before = held.get(symbol, Decimal(0))
        after = before + signed
        if abs(after) <= abs(before):
            return None  # reduces (or closes) the position
        w = self.weight(symbol)
        if self.per_symbol is not None and abs(after) * w > self.per_symbol:
            return f"at most {self.per_symbol} contracts of {symbol} at once (this order would hold {abs(after) * w})"
        total = sum((abs(q) * self.weight(s) for s, q in held.items() if s != symbol), Decimal(0)) + abs(after) * w
        if total > self.total:
            return f"at most {self.total} contracts at once, micros weighted (this order would hold {total})"
        return None
