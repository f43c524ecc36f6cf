"""The risk score: 0 (calm) to 100 (about to fail), with each factor explained.

score = 100 × Σ weightᵢ × factorᵢ, every factor a share in [0, 1]:

| factor | share | weight |
|---|---|---|
| daily_loss_used | 1 − (equity − today's floor) ÷ daily loss limit | 0.25 |
| max_loss_used | 1 − (equity − the max-loss floor) ÷ max loss limit | 0.25 |

The floors and limits are challenges' own (`limits` in its events: the floor of a trailing
drawdown where it stands now, a daily limit in % of the day's reference as today's amount), so
a trailing floor that is 99% used scores as 99%, not as the ~40% a distance from the initial
balance would say. Before a challenge has reported a floor, the distance from the day-start
equity and from the initial balance stand in.
| leverage | open notional ÷ equity ÷ 30 (30:1 counts as full) | 0.15 |
| concentration | largest symbol's share of the open notional | 0.10 |
| overtrading | fills today ÷ 50 | 0.10 |
| losing_streak | consecutive losing trades ÷ 6 | 0.10 |
| volatility | annualised st. dev. of daily equity returns ÷ 50% | 0.05 |
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

WEIGHTS = {
    "daily_loss_used": 0.25,
    "max_loss_used": 0.25,
    "leverage": 0.15,
    "concentration": 0.10,
    "overtrading": 0.10,
    "losing_streak": 0.10,
    "volatility": 0.05,
}
FULL_LEVERAGE = 30.0


@dataclass
class AccountView:
    initial_balance: Decimal
    daily_loss: Decimal | None
    max_loss: Decimal | None
    profit_target: Decimal | None
    balance: Decimal
    equity: Decimal
    day_start: Decimal
    exposure: dict[str, Decimal] = field(default_factory=dict)
    losing_streak: int = 0
    trades_today: int = 0
    daily_floor: Decimal | None = None  # as challenges last reported them
    max_floor: Decimal | None = None

    @property
    def notional(self) -> Decimal:
        return sum(self.exposure.values(), Decimal(0))

    @property
    def leverage(self) -> float:
        return float(self.notional / self.equity) if self.equity > 0 else math.inf

    def daily_used(self) -> float:
        if not self.daily_loss:
            return 0.0
        if self.daily_floor is not None:
            return float(1 - (self.equity - self.daily_floor) / self.daily_loss)
        return float((self.day_start - self.equity) / self.daily_loss)

    def max_used(self) -> float:
        if not self.max_loss:
            return 0.0
        if self.max_floor is not None:
            return float(1 - (self.equity - self.max_floor) / self.max_loss)
        return float((self.initial_balance - self.equity) / self.max_loss)

    def report(self, limits: dict[str, dict[str, str]]) -> None:
        """Take the floors and limits an event of challenges carries."""
        if "daily_loss" in limits:
            self.daily_floor, self.daily_loss = (Decimal(limits["daily_loss"][k]) for k in ("floor", "limit"))
        if "max_loss" in limits:
            self.max_floor, self.max_loss = (Decimal(limits["max_loss"][k]) for k in ("floor", "limit"))


def _clamp(x: float) -> float:
    return 0.0 if math.isnan(x) else max(0.0, min(1.0, x))


def factors(a: AccountView, daily_returns: list[float]) -> dict[str, tuple[float, str]]:
    n = a.notional
    vol = 0.0
    if len(daily_returns) >= 2:
        m = sum(daily_returns) / len(daily_returns)
        vol = math.sqrt(sum((r - m) ** 2 for r in daily_returns) / (len(daily_returns) - 1)) * math.sqrt(252)
    largest = max(a.exposure.values(), default=Decimal(0))
    return {
        "daily_loss_used": (_clamp(a.daily_used()), f"{a.daily_used():.0%} of today's loss limit used"),
        "max_loss_used": (_clamp(a.max_used()), f"{a.max_used():.0%} of the maximum loss used"),
        "leverage": (_clamp(a.leverage / FULL_LEVERAGE), f"open exposure {a.leverage:.1f}× equity"),
        "concentration": (
            _clamp(float(largest / n) if n else 0.0),
            f"largest position {float(largest / n):.0%} of exposure" if n else "no open exposure",
        ),
        "overtrading": (_clamp(a.trades_today / 50), f"{a.trades_today} fills today"),
        "losing_streak": (_clamp(a.losing_streak / 6), f"{a.losing_streak} losing trades in a row"),
        "volatility": (_clamp(vol / 0.5), f"daily equity volatility {vol:.0%} a year"),
    }


def score(a: AccountView, daily_returns: list[float]) -> tuple[float, dict[str, tuple[float, str]]]:
    f = factors(a, daily_returns)
    return round(100 * sum(WEIGHTS[k] * v for k, (v, _) in f.items()), 2), f
