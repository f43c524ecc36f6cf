"""The plans a trader can buy, each pointing at a versioned rule pack."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    rule_pack: str
    rule_pack_version: int
    phase: int
    account_sizes: tuple[Decimal, ...]
    currency: str
    description: str


SIZES = tuple(Decimal(s) for s in ("10000.00", "25000.00", "50000.00", "100000.00", "200000.00"))

PLANS: tuple[Plan, ...] = (
    Plan(
        "ftmo-phase1",
        "FTMO-style Challenge (phase 1)",
        "ftmo-2step",
        1,
        1,
        SIZES,
        "USD",
        "10% target, 5% daily loss, 10% max loss, 4 trading days; midnight Europe/Prague.",
    ),
    Plan(
        "ftmo-phase2",
        "FTMO-style Verification (phase 2)",
        "ftmo-2step",
        1,
        2,
        SIZES,
        "USD",
        "5% target, 5% daily loss, 10% max loss, 4 trading days.",
    ),
    Plan(
        "topstep-combine",
        "Topstep-style Combine",
        "topstep-combine",
        1,
        1,
        tuple(Decimal(s) for s in ("50000.00", "100000.00", "150000.00")),
        "USD",
        "Dollar target, end-of-day trailing max loss locking at start, 50% consistency; 17:00 Chicago.",
    ),
    Plan(
        "apex-eval",
        "Apex-style Evaluation",
        "apex-intraday",
        1,
        1,
        tuple(Decimal(s) for s in ("25000.00", "50000.00", "100000.00")),
        "USD",
        "Intraday trailing drawdown from peak equity, locking at start + 100.",
    ),
)
