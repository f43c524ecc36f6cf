"""Rule kinds judged as the firms publish them: their own worked examples, with the page each
comes from, and the properties that must hold for any pack (issue 17)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.packs import (
    BUILT_IN,
    FTMO_1STEP,
    FTMO_2STEP,
    TAKEPROFIT_TEST,
    THE5ERS_HIGH_STAKES,
    TOPSTEP_COMBINE,
    TOPSTEP_COMBINE_DLL,
    rule,
)
from services.challenges.domain.rulepacks import RulePack, Rules
from services.challenges.domain.rules import RuleError

D = Decimal
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def _started(rules: Rules, now: datetime = T0) -> Account:
    a = Account.new(rules.initial_balance)
    engine.start(a, rules, now)
    return a


def _breach(rules: Rules, a: Account, equity: str, now: datetime = T0) -> str | None:
    b, _ = engine.mark(a, rules, D(equity), now)
    return b.rule if b else None


# --- FTMO ------------------------------------------------------------------------------------


def test_ftmo_daily_loss_allows_equity_at_the_limit_and_fails_below_it() -> None:
    # academy.ftmo.com/lesson/maximum-daily-loss: "a limit below which your equity cannot drop";
    # limit = balance at midnight CE(S)T − 5% of the initial capital (100,000 → 95,000).
    r = FTMO_2STEP.rules_for(1, D("100000.00"))
    assert _breach(r, _started(r), "95000.00") is None
    assert _breach(r, _started(r), "94999.99") == "daily_loss"


def test_ftmo_daily_loss_moves_with_the_midnight_balance() -> None:
    # Same page: a day closed at +$3,000 (103,000) makes the next day's limit $98,000.
    r = FTMO_2STEP.rules_for(1, D("100000.00"))
    a = _started(r)
    a.balance = a.equity = D("103000.00")
    engine.roll_day(a, r, T0 + timedelta(days=1))
    daily = r.of("daily_loss")
    assert daily is not None and daily.floor(a, r) == D("98000.00")


def test_topstep_fails_at_a_touch_of_its_floor() -> None:
    # help.topstep.com: the Maximum Loss Limit is broken when the balance touches or falls below it.
    r = TOPSTEP_COMBINE.rules_for(1, D("50000.00"))
    assert _breach(r, _started(r), "48000.01") is None
    assert _breach(r, _started(r), "48000.00") == "max_loss"


def test_ftmo_trading_days_are_days_a_position_is_opened() -> None:
    # academy.ftmo.com/lesson/minimum-trading-days: a position held over several days is one trading
    # day; "you need to have at least one new position opened on each trading day".
    r = FTMO_2STEP.rules_for(1, D("100000.00"))
    a = _started(r)
    engine.record_trade(a, r, T0, D(0), opened=True)  # Monday: opened
    engine.record_trade(a, r, T0 + timedelta(days=1), D(50), opened=False)  # Tuesday: only closed
    engine.record_trade(a, r, T0 + timedelta(days=2), D(0), opened=True)  # Wednesday: opened
    days = r.of("min_trading_days")
    assert days is not None and days.counted(a) == 2  # not 3
    assert a.trading_days == 3  # any fill: what the older pack counted


def test_ftmo_1step_max_loss_trails_the_midnight_balance_high_as_ftmos_example() -> None:
    # ftmo.com, Maximum Loss (1-Step): day 1 limit 90,000; balance 104,000 at midnight → 94,000;
    # balance 103,000 at the next midnight → still 94,000 ("can only increase, never decrease").
    r = FTMO_1STEP.rules_for(1, D("100000.00"))
    a = _started(r)
    max_loss = r.of("max_loss")
    assert max_loss is not None
    assert max_loss.floor(a, r) == D("90000.00")
    for day, balance, limit in ((1, "104000.00", "94000.00"), (2, "103000.00", "94000.00")):
        a.balance = a.equity = D(balance)
        engine.roll_day(a, r, T0 + timedelta(days=day))
        assert max_loss.floor(a, r) == D(limit)


def test_ftmo_1step_best_day_rule_as_ftmos_example() -> None:
    # ftmo.com FAQ "What happens if the Best Day Rule is not met in FTMO Challenge: 1-Step?":
    # $5,000 on one day and nothing else is 100%; $5,000 more on other days makes it 50%: met.
    r = FTMO_1STEP.rules_for(1, D("100000.00"))
    a = _started(r)
    best = r.of("consistency")
    assert best is not None
    a.daily_pnl = {"2026-11-23": D(5000)}
    a.balance = D("105000")
    assert best.blocks_pass(a, r)
    a.daily_pnl |= {"2026-11-24": D(2000), "2026-11-25": D(3000), "2026-11-26": D(-1500)}
    a.balance = D("108500")
    assert not best.blocks_pass(a, r)  # 5,000 ÷ 10,000 positive days' profit = 50%: "not more than"
    objective = best.objective(a, r)
    assert objective is not None and objective.state == "OK"


def test_take_profit_traders_consistency_is_strictly_less_than_half() -> None:
    # firm-rules-2026.md: Take Profit Trader "less than 50%" — exactly 50% fails, where FTMO's passes.
    r = TAKEPROFIT_TEST.rules_for(1, D("50000.00"))
    a = _started(r)
    a.daily_pnl = {"2026-11-23": D(1500), "2026-11-24": D(1500)}
    a.balance = D("53000")
    rule_ = r.of("consistency")
    assert rule_ is not None and rule_.blocks_pass(a, r)
    objective = rule_.objective(a, r)
    assert objective is not None and objective.room_left == 0  # at the share: more profit elsewhere needed


def test_topstep_mll_as_topsteps_example() -> None:
    # help.topstep.com "What is the Maximum Loss Limit?": $50K, +$500 on day 1 → MLL $48,500; −$500
    # the next day leaves it at $48,500; +$2,500 after that (balance $52,500) → $50,000, and it stays.
    r = TOPSTEP_COMBINE.rules_for(1, D("50000.00"))
    a = _started(r)
    mll = r.of("max_loss")
    assert mll is not None and mll.floor(a, r) == D("48000.00")
    for day, balance, limit in (
        (1, "50500", "48500"),
        (2, "50000", "48500"),
        (3, "52500", "50000"),
        (4, "60000", "50000"),
    ):
        a.balance = a.equity = D(balance)
        engine.roll_day(a, r, T0 + timedelta(days=day))
        assert mll.floor(a, r) == D(limit), day


def test_the5ers_daily_loss_is_five_percent_of_the_higher_of_balance_and_equity() -> None:
    # help.the5ers.com (High Stakes): 5% of the day's starting equity or balance, the higher of them.
    r = THE5ERS_HIGH_STAKES.rules_for(1, D("100000.00"))
    a = _started(r)
    a.equity = D("102000.00")  # a floating profit carried over the reset
    engine.roll_day(a, r, T0 + timedelta(days=1))
    daily = r.of("daily_loss")
    assert daily is not None and daily.floor(a, r) == D("102000.00") - D("5100.00")
    assert _breach(r, a, "96900.00", T0 + timedelta(days=1)) == "daily_loss"  # "reaching" it ends the account


# --- properties ------------------------------------------------------------------------------------


EQUITIES = st.lists(st.integers(-12_000, 12_000).map(lambda n: D(n)), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(moves=EQUITIES, seed=st.integers(0, 2**16))
def test_reordering_a_packs_rules_changes_no_verdict(moves: list[Decimal], seed: int) -> None:
    for pack in (FTMO_2STEP, TOPSTEP_COMBINE_DLL, THE5ERS_HIGH_STAKES):
        shuffled = json.loads(json.dumps(pack.to_dict()))
        for ph in shuffled["phases"]:
            random.Random(seed).shuffle(ph["rules"])
        size = pack.account_sizes()[0]
        verdicts = []
        for p in (pack, RulePack.from_dict(shuffled)):
            r = p.rules_for(1, size)
            a = _started(r)
            seen = []
            for i, m in enumerate(moves):
                b, _ = engine.mark(a, r, size + m, T0 + timedelta(hours=i))
                seen.append((b.rule, b.hard) if b else None)
                if b:
                    engine.apply_breach(a, r, b, T0)
            verdicts.append((seen, a.status))
        assert verdicts[0] == verdicts[1]


@settings(max_examples=150, deadline=None)
@given(moves=EQUITIES)
def test_a_soft_breach_never_fails_an_account_and_a_gate_never_breaches(moves: list[Decimal]) -> None:
    r = TOPSTEP_COMBINE_DLL.rules_for(1, D("50000.00"))
    daily = r.of("daily_loss")
    assert daily is not None and daily.hard is False  # type: ignore[attr-defined]
    a = _started(r)
    for i, m in enumerate(moves):
        b, _ = engine.mark(a, r, D("50000") + m, T0 + timedelta(minutes=i))
        if b is not None:
            assert b.rule in ("daily_loss", "max_loss")  # consistency and the target are gates only
            assert b.hard == (b.rule == "max_loss")
            engine.apply_breach(a, r, b, T0)
            assert a.status == (engine.FAILED if b.hard else engine.PAUSED)
            if b.hard:
                break
            a.status = engine.ACTIVE  # the next trading day


@settings(max_examples=200, deadline=None)
@given(balances=st.lists(st.integers(-3000, 9000).map(lambda n: D(n)), min_size=1, max_size=25))
def test_a_trailing_floor_never_decreases_and_stops_at_its_lock(balances: list[Decimal]) -> None:
    for pack, size in ((TOPSTEP_COMBINE, D("50000.00")), (FTMO_1STEP, D("100000.00"))):
        r = pack.rules_for(1, size)
        a = _started(r)
        max_loss = r.of("max_loss")
        assert max_loss is not None
        last = max_loss.floor(a, r)
        for day, b in enumerate(balances, 1):
            a.balance = a.equity = size + b
            engine.roll_day(a, r, T0 + timedelta(days=day))
            floor = max_loss.floor(a, r)
            assert floor >= last
            if pack is TOPSTEP_COMBINE:
                assert floor <= size  # locks at the starting balance
            last = floor


# --- packs as data ------------------------------------------------------------------------------------


def test_every_built_in_pack_resolves_at_every_size_it_names() -> None:
    for pack in BUILT_IN:
        for phase in range(1, len(pack.phases) + 1):
            for size in pack.account_sizes():
                r = pack.rules_for(phase, size)
                assert r.of("max_loss") is not None and r.of("profit_target") is not None
                assert Rules.from_json(r.to_json()) == r  # what a challenge stores reads back the same


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["phases"][0]["rules"].append(rule("no_such_rule")), "phases[0].rules[4].kind"),
        (lambda p: p["phases"][0]["rules"][0]["params"].update(pcnt="5"), "phases[0].rules[0].params.pcnt"),
        (lambda p: p["phases"][0]["rules"][1]["params"].update(mode="sideways"), "phases[0].rules[1].params.mode"),
        (
            lambda p: p["phases"][0]["rules"][1]["params"].update(comparator="near"),
            "phases[0].rules[1].params.comparator",
        ),
        (lambda p: p["phases"][0]["rules"][3]["params"].update(pct="-1"), "phases[0].rules[3].params.pct"),
        (lambda p: p["phases"][0]["rules"].append(rule("profit_target", pct="3")), "phases[0].rules[4].kind"),
        (lambda p: p["phases"][0].update(comission_per_lot="1"), "phases[0].comission_per_lot"),
        (lambda p: p.update(timezone="Mars/Olympus"), "timezone"),
    ],
)
def test_a_bad_pack_is_refused_with_the_field_at_fault(change: object, field: str) -> None:
    d = json.loads(json.dumps(FTMO_2STEP.to_dict()))
    change(d)  # type: ignore[operator]
    with pytest.raises(RuleError) as err:
        RulePack.from_dict(d)
    assert field in err.value.violations, err.value.violations


def test_rules_stored_before_rule_kinds_are_judged_as_they_were() -> None:
    """A challenge judged by what it started with: format 1 rules (one set of fields) read as the
    same rules, a touch of a limit still breaching, any fill still a trading day."""
    stored = {
        "pack": "ftmo-2step",
        "version": 1,
        "phase": 1,
        "final_phase": False,
        "timezone": "Europe/Prague",
        "reset_time": "00:00:00",
        "initial_balance": "100000.00",
        "profit_target": "10000.00",
        "daily_loss": "5000.00",
        "daily_loss_basis": "initial",
        "day_start": "balance",
        "daily_loss_hard": True,
        "max_loss": "10000.00",
        "max_loss_kind": "static",
        "max_loss_lock": None,
        "min_trading_days": 4,
        "consistency": None,
        "warning_share": "0.8",
        "commission_per_lot": "5.00",
        "next_plan": "ftmo-phase2",
    }
    r = Rules.from_json(stored)
    assert [x.kind for x in r.rules] == ["max_loss", "daily_loss", "profit_target", "min_trading_days"]
    assert _breach(r, _started(r), "95000.00") == "daily_loss"  # format 1 broke at a touch
    days = r.of("min_trading_days")
    assert days is not None and days.to_params() == {"days": 4, "count": "any_fill"}
    # And a format 1 pack definition still publishes and resolves.
    v1 = {
        "id": "old",
        "version": 1,
        "name": "old",
        "timezone": "Europe/Prague",
        "reset_time": "00:00",
        "defaults": {"daily_loss_pct": "5", "max_loss_pct": "10", "min_trading_days": 1},
        "phases": [{"profit_target_pct": "10"}],
    }
    assert RulePack.from_dict(v1).rules_for(1, D("100000.00")).limit("daily_loss") == D("5000.00")


def test_seven_days_without_a_fill_fail_a_myfundedfutures_account() -> None:
    # firm-rules-2026.md (MyFundedFutures Rapid): 7 calendar days without trading is a breach.
    from services.challenges.domain.packs import MFFU_RAPID

    r = MFFU_RAPID.rules_for(1, D("50000.00"))
    a = _started(r)
    engine.record_trade(a, r, T0 + timedelta(days=1), D(0))
    assert _breach(r, a, "50000", T0 + timedelta(days=8) - timedelta(seconds=1)) is None
    b, _ = engine.mark(a, r, D("50000"), T0 + timedelta(days=8))
    assert b is not None and (b.rule, b.reason, b.hard) == ("inactivity", "INACTIVITY", True)


def test_apex_evaluations_expire_at_18_new_york_on_day_30() -> None:
    # firm-rules-2026.md (Apex 4.0): 30 calendar days, expiring 18:00 ET on day 30 (DST included).
    from zoneinfo import ZoneInfo

    from services.challenges.domain.packs import APEX_INTRADAY

    ny = ZoneInfo("America/New_York")
    r = APEX_INTRADAY.rules_for(1, D("50000.00"))
    a = _started(r, datetime(2026, 11, 23, 10, 0, tzinfo=ny))  # day 1: Monday 23 November
    deadline = datetime(2026, 12, 22, 18, 0, tzinfo=ny)
    assert _breach(r, a, "50000", deadline - timedelta(seconds=1)) is None
    b, _ = engine.mark(a, r, D("50000"), deadline)
    assert b is not None and b.reason == "TIME_LIMIT_REACHED"
    limit = r.of("time_limit")
    assert limit is not None
    objective = limit.objective(a, r, deadline - timedelta(days=2))
    assert objective is not None and objective.room_left == D("2.00")  # days left, for the countdown


def test_topstep_caps_contracts_with_micros_weighted_as_a_refusal_not_a_breach() -> None:
    # firm-rules-2026.md (Topstep): 5 / 10 / 15 minis on 50K / 100K / 150K, micros 10:1.
    r = TOPSTEP_COMBINE.rules_for(1, D("50000.00"))
    cap = r.of("max_position")
    assert cap is not None
    assert cap.pre_trade({}, "ES", D(5)) is None
    assert "at most 5" in (cap.pre_trade({}, "ES", D(6)) or "")
    assert cap.pre_trade({"ES": D(4)}, "MES", D(10)) is None  # 4 + 10 × 0.1 = 5
    assert cap.pre_trade({"ES": D(4)}, "MES", D(11)) is not None  # 5.1
    assert cap.pre_trade({"ES": D(5)}, "ES", D(-2)) is None  # reducing is always allowed
    assert cap.pre_trade({"ES": D(5)}, "ES", D(-11)) is not None  # a reversal to short 6 is not
    assert TOPSTEP_COMBINE.rules_for(1, D("150000.00")).of("max_position").pre_trade({}, "NQ", D(15)) is None  # type: ignore[union-attr]
