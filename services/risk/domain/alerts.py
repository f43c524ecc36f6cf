"""Alerts from an account's state: each has a dedup key, so it fires once per window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.risk.domain.scoring import FULL_LEVERAGE, AccountView


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str  # INFO | WARNING | CRITICAL
    message: str
    details: dict[str, Any]
    dedup_key: str


def evaluate(
    cid: str,
    a: AccountView,
    trading_day: str,
    thresholds: tuple[float, ...] = (0.8, 0.9),
    streak_alert: int = 3,
    leverage_alert: float = FULL_LEVERAGE * 0.8,
) -> list[Alert]:
    out = []
    for rule, used, window in (("daily_loss", a.daily_used(), trading_day), ("max_loss", a.max_used(), "all")):
        # Only the highest threshold reached: a jump from 50% to 95% is one CRITICAL alert, not a
        # WARNING and a CRITICAL at once; each threshold still fires once per window as it is crossed.
        reached = [t for t in sorted(thresholds) if used >= t]
        if reached:
            t = reached[-1]
            out.append(
                Alert(
                    "limit_approaching",
                    "CRITICAL" if t >= 0.9 else "WARNING",
                    f"{used:.0%} of the {rule.replace('_', ' ')} limit used",
                    {"rule": rule, "threshold": t, "used_ratio": round(used, 4)},
                    f"{cid}:limit:{rule}:{t}:{window}",
                )
            )
    if a.losing_streak >= streak_alert:
        out.append(
            Alert(
                "losing_streak",
                "WARNING",
                f"{a.losing_streak} losing trades in a row",
                {"streak": a.losing_streak},
                f"{cid}:streak:{trading_day}",
            )
        )
    if a.leverage >= leverage_alert and a.notional > 0:
        out.append(
            Alert(
                "over_leverage",
                "WARNING",
                f"open exposure is {a.leverage:.1f}× equity",
                {"leverage": round(a.leverage, 2)},
                f"{cid}:leverage:{trading_day}",
            )
        )
    if a.profit_target and a.balance - a.initial_balance >= a.profit_target:
        out.append(
            Alert(
                "target_reached",
                "INFO",
                "profit target reached on closed balance",
                {"profit": str(a.balance - a.initial_balance), "target": str(a.profit_target)},
                f"{cid}:target",
            )
        )
    return out


def inactivity(cid: str, last_activity: datetime, now: datetime, after: timedelta) -> Alert | None:
    """An ACTIVE challenge with no trade for `after`: minimum-days and deadline objectives
    slip while nothing happens. Once per day."""
    idle = now - last_activity
    if idle < after:
        return None
    return Alert(
        "inactivity",
        "INFO",
        f"no trading for {idle.days} days {idle.seconds // 3600} hours",
        {"idle_hours": round(idle.total_seconds() / 3600, 1)},
        f"{cid}:inactive:{now.date().isoformat()}",
    )
