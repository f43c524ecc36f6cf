"""The built-in rule packs: the major firms' 2026 programs, as data.

Each pack cites the firm page its figures come from (also in docs/rules.md, with what each rule
kind models). Figures marked [assumed] are not on a page we could read; they are parameters, so
an operator publishes a new version when the firm's page says otherwise.
"""

from __future__ import annotations

from typing import Any

from services.challenges.domain.rulepacks import RulePack


def rule(kind: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "params": params}


def two_step(common: list[dict[str, Any]], first: str, second: str, next_plan: str) -> list[dict[str, Any]]:
    """A two-phase program: the same limits, a target of `first` then `second` % of the initial
    balance; passing phase 1 opens `next_plan`."""
    return [
        {"next_plan": next_plan, "rules": [*common, rule("profit_target", pct=first)]},
        {"rules": [*common, rule("profit_target", pct=second)]},
    ]


def per_size(**by_size: str) -> dict[str, str]:
    """A parameter given per account size: per_size(s50000="2000") -> {"50000": "2000"}."""
    return {k.removeprefix("s"): v for k, v in by_size.items()}


# FTMO 2-Step — academy.ftmo.com/lesson/maximum-daily-loss ("a limit below which your equity
# cannot drop": equal is allowed; balance at midnight CE(S)T − 5% of the initial capital),
# academy.ftmo.com/lesson/minimum-trading-days (a day counts when a new position is opened,
# in CE(S)T), ftmo.com FAQ (Maximum Loss 10% static, targets 10% / 5%, no time limit).
FTMO_2STEP = RulePack(
    id="ftmo-2step",
    version=2,
    name="FTMO 2-Step (Challenge + Verification)",
    timezone="Europe/Prague",
    reset_time="00:00",
    defaults={"commission_per_lot": "5.00"},
    phases=two_step(
        [
            rule("daily_loss", pct="5", reference="balance", comparator="beyond"),
            rule("max_loss", pct="10", mode="static", comparator="beyond"),
            rule("min_trading_days", days=4, count="opened"),
        ],
        "10",
        "5",
        "ftmo-phase2",
    ),
)

# FTMO 1-Step — ftmo.com (Maximum Loss 1-Step: the highest end-of-day balance, or the initial
# capital if higher, − 10%, recalculated at midnight CE(S)T, never decreasing; no lock
# published), ftmo.com FAQ "What happens if the Best Day Rule is not met" (best day ≤ 50% of
# the profit of the positive days; not met = keep trading, never a failure); daily loss 3%.
FTMO_1STEP = RulePack(
    id="ftmo-1step",
    version=1,
    name="FTMO 1-Step",
    timezone="Europe/Prague",
    reset_time="00:00",
    defaults={"commission_per_lot": "5.00"},
    phases=[
        {
            "rules": [
                rule("daily_loss", pct="3", reference="balance", comparator="beyond"),
                rule("max_loss", pct="10", mode="trailing_eod", lock="none", comparator="beyond"),
                rule("profit_target", pct="10"),
                rule("consistency", pct="50", basis="positive_days", comparator="le"),
            ]
        }
    ],
)

TOPSTEP_SIZES = {
    "mll": per_size(s50000="2000", s100000="3000", s150000="4500"),
    "contracts": per_size(s50000="5", s100000="10", s150000="15"),
}
TOPSTEP_TARGET = per_size(s50000="3000", s100000="6000", s150000="9000")

# Topstep Trading Combine — help.topstep.com "What is the Maximum Loss Limit?" (trails the
# end-of-day balance high, never down, and stays at the starting balance once it reaches it;
# "touches or falls below" ends the Combine), the Combine's consistency target (best day under
# 50% of the total profit: strict; some 2026 pages say 55% — a parameter), no daily loss limit
# on the Combine since 2024-08-25. Trading day 17:00 CT. Commission per contract per side
# [assumed]. Position caps: 5 / 10 / 15 minis, micros 10:1. help.futures.topstep.com
# "Prohibited Conduct": the trading day runs 5:00 PM CT to 3:10 PM CT — open positions are
# flattened at 3:10 and no trade is placed until 5:00 PM CT (flat_by).
_TOPSTEP_RULES = [
    rule("max_loss", amount=TOPSTEP_SIZES["mll"], mode="trailing_eod", lock="initial", comparator="touch"),
    rule("profit_target", amount=TOPSTEP_TARGET),
    rule("consistency", pct="50", basis="net", comparator="lt"),
    rule("max_position", contracts=TOPSTEP_SIZES["contracts"]),
    rule("flat_by", at="15:10"),
]
TOPSTEP_COMBINE = RulePack(
    id="topstep-combine",
    version=3,
    name="Topstep Trading Combine",
    timezone="America/Chicago",
    reset_time="17:00",
    defaults={"commission_per_lot": "2.50"},
    phases=[{"rules": _TOPSTEP_RULES}],
)

# The same with Topstep's optional daily loss limit: soft (flatten, no trading until 17:00 CT).
TOPSTEP_COMBINE_DLL = RulePack(
    id="topstep-combine-dll",
    version=2,
    name="Topstep Trading Combine with the optional Daily Loss Limit",
    timezone="America/Chicago",
    reset_time="17:00",
    defaults={"commission_per_lot": "2.50"},
    phases=[
        {
            "rules": [
                *_TOPSTEP_RULES,
                rule(
                    "daily_loss",
                    amount=per_size(s50000="1000", s100000="2000", s150000="3000"),
                    reference="balance",
                    hard=False,
                    comparator="touch",
                ),
            ]
        }
    ],
)

APEX_TARGET = per_size(s25000="1500", s50000="3000", s100000="6000", s150000="9000")
APEX_DRAWDOWN = per_size(s25000="1000", s50000="2000", s100000="3000", s150000="4000")
APEX_CONTRACTS = per_size(s25000="4", s50000="6", s100000="8", s150000="12")

# Apex 4.0 intraday evaluation (accounts from 2026-03-01) — Apex help center as summarised in
# ../shared/reference/firm-rules-2026.md [S]: 6% target, the threshold trails the peak balance
# including unrealized P&L in real time, a touch fails, no daily loss limit; locks at the
# target balance (Rithmic/WealthCharts); 30 calendar days, expiring 18:00 ET on day 30;
# 4 / 6 / 8 / 12 minis.
APEX_INTRADAY = RulePack(
    id="apex-intraday",
    version=2,
    name="Apex 4.0 Evaluation (intraday trailing)",
    timezone="America/New_York",
    reset_time="18:00",
    defaults={"commission_per_lot": "2.00"},
    phases=[
        {
            "rules": [
                rule("max_loss", amount=APEX_DRAWDOWN, mode="trailing_peak", lock="target", comparator="touch"),
                rule("time_limit", days=30, ends_at="18:00"),
                rule("profit_target", amount=APEX_TARGET),
                rule("max_position", contracts=APEX_CONTRACTS),
            ]
        }
    ],
)

# Apex 4.0 EOD evaluation — as summarised in ../shared/reference/firm-rules-2026.md [S] (Apex help
# center; proptradingvibes.com "Apex Trader Funding Daily Loss Limit", 2026-03, for the DLL
# figures): the threshold is recomputed once a day at 16:59:59 ET from the closing balance and
# never moves down, open equity touching it fails; a daily loss limit of half the drawdown,
# equity-based and soft (flatten, no trading until the 18:00 ET session); the session ends 16:59 ET,
# so positions are closed then [assumed: Apex's flat time for EOD accounts]; the same target,
# lock, 30 days and caps as the intraday evaluation.
APEX_EOD = RulePack(
    id="apex-eod",
    version=1,
    name="Apex 4.0 Evaluation (end-of-day trailing)",
    timezone="America/New_York",
    reset_time="18:00",
    defaults={"commission_per_lot": "2.00"},
    phases=[
        {
            "rules": [
                rule(
                    "max_loss",
                    amount=APEX_DRAWDOWN,
                    mode="trailing_eod",
                    eod_at="16:59:59",
                    lock="target",
                    comparator="touch",
                ),
                rule("time_limit", days=30, ends_at="18:00"),
                rule(
                    "daily_loss",
                    amount=per_size(s25000="500", s50000="1000", s100000="1500", s150000="2000"),
                    reference="balance",
                    hard=False,
                    comparator="touch",
                ),
                rule("profit_target", amount=APEX_TARGET),
                rule("max_position", contracts=APEX_CONTRACTS),
                rule("flat_by", at="16:59"),
            ]
        }
    ],
)

# The5ers High Stakes — help.the5ers.com "What is the maximum loss and the maximum daily loss in
# the High Stakes program" (daily loss 5% of the day's starting equity or balance, the higher,
# at 5 PM EST / 00:00 UTC+3; max loss 10% of the initial balance; "reaching" a limit ends the
# account), targets 8% / 5%, 3 profitable days of ≥ 0.5% of the initial balance [T].
THE5ERS_HIGH_STAKES = RulePack(
    id="the5ers-high-stakes",
    version=1,
    name="The5ers High Stakes",
    timezone="America/New_York",
    reset_time="17:00",
    phases=two_step(
        [
            rule("daily_loss", pct="5", pct_of="reference", reference="max_balance_equity", comparator="touch"),
            rule("max_loss", pct="10", mode="static", comparator="touch"),
            rule("min_profitable_days", days=3, pct="0.5"),
        ],
        "8",
        "5",
        "the5ers-high-stakes-2",
    ),
)

# FundedNext Stellar 2-Step — help.fundednext.com as summarised in firm-rules-2026.md [S]:
# 8% / 5%, daily loss 5% of the initial balance from the day-start balance, max loss 10%
# static, 5 trading days. Reset zone (broker server time, UTC+2/+3 with European DST) and the
# touch comparator [assumed].
FUNDEDNEXT_STELLAR = RulePack(
    id="fundednext-stellar-2step",
    version=1,
    name="FundedNext Stellar 2-Step",
    timezone="Europe/Athens",
    reset_time="00:00",
    phases=two_step(
        [
            rule("daily_loss", pct="5", reference="balance"),
            rule("max_loss", pct="10", mode="static"),
            rule("min_trading_days", days=5, count="any_fill"),
        ],
        "8",
        "5",
        "fundednext-stellar-2",
    ),
)

# FundingPips 2-Step — firm-rules-2026.md [S]: 8% / 5%, daily loss 5% from the higher of the
# day's opening balance and equity, max loss 10%, 3 trading days. Zone [assumed].
FUNDINGPIPS_2STEP = RulePack(
    id="fundingpips-2step",
    version=1,
    name="FundingPips 2-Step",
    timezone="Europe/Athens",
    reset_time="00:00",
    phases=two_step(
        [
            rule("daily_loss", pct="5", reference="max_balance_equity"),
            rule("max_loss", pct="10", mode="static"),
            rule("min_trading_days", days=3, count="any_fill"),
        ],
        "8",
        "5",
        "fundingpips-2",
    ),
)

# E8 One — help.e8markets.com as summarised in firm-rules-2026.md [S]: daily loss 4% of the
# day-start balance ("at or below" breaches), max loss 6% trailing the highest CLOSED balance
# (floating peaks do not move it), locking at the initial balance. Target 9% and the zone
# [assumed].
E8_ONE = RulePack(
    id="e8-one",
    version=1,
    name="E8 One",
    timezone="America/New_York",
    reset_time="17:00",
    phases=[
        {
            "rules": [
                rule("daily_loss", pct="4", pct_of="reference", reference="balance", comparator="touch"),
                rule("max_loss", pct="6", mode="trailing_closed", lock="initial", comparator="touch"),
                rule("profit_target", pct="9"),
            ]
        }
    ],
)

# MyFundedFutures Rapid — help.myfundedfutures.com as summarised in firm-rules-2026.md [S]:
# end-of-day trailing $2,000 (50K) tested on open equity, locking at start + 100; consistency
# 50% as a gate; 2 trading days; 7 calendar days without a trade is a breach. Targets [assumed].
MFFU_RAPID = RulePack(
    id="mffu-rapid",
    version=1,
    name="MyFundedFutures Rapid",
    timezone="America/Chicago",
    reset_time="17:00",
    defaults={"commission_per_lot": "2.50"},
    phases=[
        {
            "rules": [
                rule(
                    "max_loss",
                    amount=per_size(s25000="1000", s50000="2000", s100000="3000", s150000="4500"),
                    mode="trailing_eod",
                    lock="100",
                    comparator="touch",
                ),
                rule("inactivity", days=7),
                rule("profit_target", amount=per_size(s25000="1500", s50000="3000", s100000="6000", s150000="9000")),
                rule("min_trading_days", days=2, count="any_fill"),
                rule("consistency", pct="50", basis="net", comparator="le"),
            ]
        }
    ],
)

# Take Profit Trader Test — takeprofittrader help as summarised in firm-rules-2026.md [S]: EOD
# trailing ($2,000 for 50K), 5 trading days, best day ÷ total profit LESS than 50% (50% fails).
# Targets, other sizes and the lock [assumed].
TAKEPROFIT_TEST = RulePack(
    id="takeprofit-test",
    version=1,
    name="Take Profit Trader Test",
    timezone="America/Chicago",
    reset_time="17:00",
    defaults={"commission_per_lot": "2.50"},
    phases=[
        {
            "rules": [
                rule(
                    "max_loss",
                    amount=per_size(s25000="1500", s50000="2000", s75000="2500", s100000="3000", s150000="4500"),
                    mode="trailing_eod",
                    lock="initial",
                    comparator="touch",
                ),
                rule(
                    "profit_target",
                    amount=per_size(s25000="1500", s50000="3000", s75000="4500", s100000="6000", s150000="9000"),
                ),
                rule("min_trading_days", days=5, count="any_fill"),
                rule("consistency", pct="50", basis="net", comparator="lt"),
            ]
        }
    ],
)

BUILT_IN: tuple[RulePack, ...] = (
    FTMO_2STEP,
    FTMO_1STEP,
    TOPSTEP_COMBINE,
    TOPSTEP_COMBINE_DLL,
    APEX_INTRADAY,
    APEX_EOD,
    THE5ERS_HIGH_STAKES,
    FUNDEDNEXT_STELLAR,
    FUNDINGPIPS_2STEP,
    E8_ONE,
    MFFU_RAPID,
    TAKEPROFIT_TEST,
)
