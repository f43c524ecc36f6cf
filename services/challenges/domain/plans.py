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


def _sizes(*sizes: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(s) for s in sizes)


FUTURES_SIZES = _sizes("50000.00", "100000.00", "150000.00")
APEX_SIZES = _sizes("25000.00", "50000.00", "100000.00", "150000.00")


def _two_step(plan: str, pack: str, name: str, first: str, second: str, sizes: tuple[Decimal, ...]) -> tuple[Plan, ...]:
    """A two-phase program: phase 1's plan, and the phase-2 plan a pass opens."""
    return (
        Plan(plan, f"{name} (phase 1)", pack, 1, 1, sizes, "USD", first),
        Plan(
            f"{plan}-2" if plan != "ftmo-phase1" else "ftmo-phase2",
            f"{name} (phase 2)",
            pack,
            1,
            2,
            sizes,
            "USD",
            second,
        ),
    )


PLANS: tuple[Plan, ...] = (
    Plan(
        "ftmo-phase1",
        "FTMO 2-Step Challenge (phase 1)",
        "ftmo-2step",
        2,
        1,
        SIZES,
        "USD",
        "10% target, 5% daily loss, 10% max loss (equity may reach, not pass, a limit), 4 days with a position "
        "opened; midnight Europe/Prague.",
    ),
    Plan(
        "ftmo-phase2",
        "FTMO 2-Step Verification (phase 2)",
        "ftmo-2step",
        2,
        2,
        SIZES,
        "USD",
        "5% target, 5% daily loss, 10% max loss, 4 trading days.",
    ),
    Plan(
        "ftmo-1step",
        "FTMO 1-Step Challenge",
        "ftmo-1step",
        1,
        1,
        SIZES,
        "USD",
        "10% target, 3% daily loss, 10% max loss trailing the end-of-day balance, best day at most 50% of the "
        "positive days' profit.",
    ),
    Plan(
        "topstep-combine",
        "Topstep Trading Combine",
        "topstep-combine",
        3,
        1,
        FUTURES_SIZES,
        "USD",
        "Dollar target, max loss trailing the end-of-day balance and locking at the start, best day under 50% of "
        "the profit, flat by 15:10; 17:00 Chicago.",
    ),
    Plan(
        "topstep-combine-dll",
        "Topstep Trading Combine with Daily Loss Limit",
        "topstep-combine-dll",
        2,
        1,
        FUTURES_SIZES,
        "USD",
        "The Combine with the optional daily loss limit: a breach flattens and pauses until 17:00 Chicago.",
    ),
    Plan(
        "apex-eval",
        "Apex 4.0 Evaluation (intraday)",
        "apex-intraday",
        2,
        1,
        APEX_SIZES,
        "USD",
        "6% target, drawdown trailing peak equity and locking at the target balance, 30 days; 18:00 New York.",
    ),
    Plan(
        "apex-eod",
        "Apex 4.0 Evaluation (end of day)",
        "apex-eod",
        1,
        1,
        APEX_SIZES,
        "USD",
        "6% target, drawdown trailing the 16:59:59 closing balance and locking at the target balance, a soft daily "
        "loss limit, flat by 16:59, 30 days; 18:00 New York.",
    ),
    *_two_step(
        "the5ers-high-stakes",
        "the5ers-high-stakes",
        "The5ers High Stakes",
        "8% target, 5% daily loss from the higher of the day's balance and equity, 10% max loss, 3 profitable days.",
        "5% target, the same limits.",
        SIZES,
    ),
    *_two_step(
        "fundednext-stellar",
        "fundednext-stellar-2step",
        "FundedNext Stellar 2-Step",
        "8% target, 5% daily loss, 10% max loss, 5 trading days.",
        "5% target, the same limits.",
        SIZES,
    ),
    *_two_step(
        "fundingpips",
        "fundingpips-2step",
        "FundingPips 2-Step",
        "8% target, 5% daily loss from the higher of balance and equity, 10% max loss, 3 trading days.",
        "5% target, the same limits.",
        SIZES,
    ),
    Plan(
        "e8-one",
        "E8 One",
        "e8-one",
        1,
        1,
        SIZES,
        "USD",
        "9% target, 4% daily loss of the day-start balance, 6% max loss trailing the closed balance.",
    ),
    Plan(
        "mffu-rapid",
        "MyFundedFutures Rapid",
        "mffu-rapid",
        1,
        1,
        APEX_SIZES,
        "USD",
        "End-of-day trailing drawdown locking at start + 100, 50% consistency, 2 days, 7 days without a trade fails.",
    ),
    Plan(
        "takeprofit-test",
        "Take Profit Trader Test",
        "takeprofit-test",
        1,
        1,
        _sizes("25000.00", "50000.00", "75000.00", "100000.00", "150000.00"),
        "USD",
        "End-of-day trailing drawdown, 5 days, best day under 50% of the profit.",
    ),
)
