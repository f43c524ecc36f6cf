"""Risk score factors and alert rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.risk.domain import alerts
from services.risk.domain.scoring import WEIGHTS, AccountView, score

D = Decimal


def view(**kw: object) -> AccountView:
    base = dict(
        initial_balance=D(100000),
        daily_loss=D(5000),
        max_loss=D(10000),
        profit_target=D(10000),
        balance=D(100000),
        equity=D(100000),
        day_start=D(100000),
    )
    base.update(kw)
    return AccountView(**base)  # type: ignore[arg-type]


def test_calm_account_scores_zero_and_weights_sum_to_one() -> None:
    s, f = score(view(), [])
    assert s == 0.0 and set(f) == set(WEIGHTS)
    assert abs(sum(WEIGHTS.values()) - 1.0) < 1e-12


def test_score_rises_with_loss_and_leverage_and_stays_bounded() -> None:
    calm, _ = score(view(), [])
    hurt, f = score(view(equity=D(96000), exposure={"EURUSD": D(1_000_000)}, losing_streak=4), [0.01, -0.02, 0.015])
    assert calm < hurt <= 100
    assert f["daily_loss_used"][0] == 0.8 and "80%" in f["daily_loss_used"][1]
    worst, _ = score(
        view(equity=D(1), exposure={"X": D(10**9)}, losing_streak=99, trades_today=999), [0.5, -0.5, 0.5, -0.5]
    )
    assert worst == 100.0


def test_alerts_have_stable_dedup_keys_per_window() -> None:
    a = alerts.evaluate("c1", view(equity=D(95400)), "2026-11-23")
    keys = {x.dedup_key for x in a}
    # 92% of the daily loss reached at once: one alert, at the highest threshold it crossed.
    assert keys == {"c1:limit:daily_loss:0.9:2026-11-23"}
    assert [(x.severity, x.details["threshold"]) for x in a] == [("CRITICAL", 0.9)]
    on_the_way = alerts.evaluate("c1", view(equity=D(95900)), "2026-11-23")  # 82%
    assert [(x.severity, x.dedup_key) for x in on_the_way] == [("WARNING", "c1:limit:daily_loss:0.8:2026-11-23")]
    again = alerts.evaluate("c1", view(equity=D(95300)), "2026-11-23")
    assert {x.dedup_key for x in again} == keys  # same window: the store's unique key drops them
    next_day = alerts.evaluate("c1", view(equity=D(95300)), "2026-11-24")
    assert not ({x.dedup_key for x in next_day} & keys)
    assert [x.kind for x in alerts.evaluate("c1", view(balance=D(110000), equity=D(110000)), "d")] == ["target_reached"]


def test_inactivity_alert_once_a_day() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert alerts.inactivity("c", now - timedelta(hours=10), now, timedelta(hours=72)) is None
    a = alerts.inactivity("c", now - timedelta(days=4), now, timedelta(hours=72))
    assert a is not None and a.kind == "inactivity" and a.dedup_key == "c:inactive:2026-11-23"


def test_limit_usage_comes_from_the_floors_challenges_reports() -> None:
    """A trailing floor near equity is nearly all used (issue 17, item 6): measured from the
    initial balance, a 50K account up $1,900 with its floor trailed to $49,900 looked 5% used."""
    from services.challenges.domain import engine
    from services.challenges.domain.engine import Account
    from services.challenges.domain.packs import TOPSTEP_COMBINE

    rules = TOPSTEP_COMBINE.rules_for(1, Decimal("50000.00"))
    a = Account.new(Decimal("50000.00"))
    engine.start(a, rules, datetime(2026, 11, 23, tzinfo=UTC))
    a.balance = a.equity = Decimal("51900.00")
    a.max_eod_balance = Decimal("51900.00")  # the floor trails to 49,900
    a.equity = Decimal("49920.00")  # a bad day: $20 above the floor
    view = AccountView(
        initial_balance=Decimal("50000"),
        daily_loss=None,
        max_loss=Decimal("2000"),
        profit_target=None,
        balance=a.balance,
        equity=a.equity,
        day_start=a.balance,
    )
    before = view.max_used()
    view.report(rules.levels(a))
    assert round(before, 2) == 0.04  # what a copy of the rules measured from the initial balance
    assert round(view.max_used(), 2) == 0.99  # the floor where challenges says it is
