"""Rules that act at a local time, not on a price: Topstep's flat time and Apex's end-of-day
balance taken at 16:59:59 ET, judged through the session the service and `simulate` share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.challenges import simulate
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.events import EndOfDay, Event, TradeExecuted
from services.challenges.domain.packs import APEX_EOD, TOPSTEP_COMBINE, rule
from services.challenges.domain.rulepacks import RulePack
from services.challenges.domain.rules import RuleError
from services.challenges.domain.session import OrderRejected, Session

D = Decimal
CT, ET = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")


def _session(pack: RulePack, size: str, at: datetime) -> Session:
    r = pack.rules_for(1, D(size))
    s = Session(r, Account.new(r.initial_balance), simulate.specs())
    engine.start(s.account, r, at)
    return s


def _tick(s: Session, bid: str, at: datetime) -> list[Event]:
    return s.on_tick("ES", D(bid), D(bid) + D("0.25"), at)


def test_topstep_flattens_at_1510_chicago_and_refuses_orders_until_the_1700_session() -> None:
    # help.futures.topstep.com "Prohibited Conduct": the trading day is 5:00 PM CT – 3:10 PM CT;
    # positions are flattened and no trade is placed until the next day starts at 5:00 PM CT.
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=CT)
    s = _session(TOPSTEP_COMBINE, "50000.00", monday)
    _tick(s, "5200.00", monday)
    s.place("ES", "BUY", D(2), monday)
    assert engine.next_instant(s.account, s.rules, monday) == datetime(2026, 11, 23, 15, 10, tzinfo=CT)

    assert _tick(s, "5201.00", monday.replace(hour=15, minute=9, second=59)) == []
    events = _tick(s, "5202.00", monday.replace(hour=15, minute=10))
    [flat] = [e for e in events if isinstance(e, TradeExecuted)]
    assert (flat.reason, flat.side, flat.quantity, flat.price) == ("flat_by", "SELL", D(2), D("5202.00"))
    assert s.flat and s.account.status == engine.ACTIVE  # not a breach

    with pytest.raises(OrderRejected) as refused:
        s.place("ES", "BUY", D(1), monday.replace(hour=16, minute=59, second=59))
    assert refused.value.reason == "FLAT_BY"
    assert "15:10 America/Chicago" in refused.value.message and "17:00" in refused.value.message
    # After 15:10 the clock is next due at the 17:00 reset, which opens the next session.
    after = monday.replace(hour=15, minute=20)
    assert engine.next_instant(s.account, s.rules, after) == datetime(2026, 11, 23, 17, 0, tzinfo=CT)
    _tick(s, "5202.00", monday.replace(hour=17, minute=0))
    [fill] = s.place("ES", "BUY", D(1), monday.replace(hour=17, minute=1))
    assert isinstance(fill, TradeExecuted) and fill.reason == "order"


def test_topstep_flat_time_follows_daylight_saving() -> None:
    # 15:10 Chicago is 20:10 UTC in summer (CDT) and 21:10 UTC in winter (CST).
    for day, utc_hour in ((datetime(2026, 7, 6, 12, tzinfo=CT), 20), (datetime(2026, 12, 7, 12, tzinfo=CT), 21)):
        s = _session(TOPSTEP_COMBINE, "50000.00", day)
        due = engine.next_instant(s.account, s.rules, day)
        assert (due.astimezone(UTC).hour, due.astimezone(UTC).minute) == (utc_hour, 10)


def test_apex_eod_threshold_is_taken_from_the_1659_59_balance_not_the_18_00_reset() -> None:
    # firm-rules-2026.md (Apex 4.0 EOD): the threshold is recomputed once a day at 16:59:59 ET from
    # the closing balance and never moves down; $2,000 on 50K, locking at the target balance.
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=ET)
    s = _session(APEX_EOD, "50000.00", noon)
    max_loss = s.rules.of("max_loss")
    assert max_loss is not None
    _tick(s, "5200.00", noon)
    s.place("ES", "BUY", D(1), noon)
    _tick(s, "5214.00", noon.replace(hour=16, minute=30))  # +$687.50 open
    assert max_loss.floor(s.account, s.rules) == D("48000.00")  # open profit moves nothing

    events = _tick(s, "5214.00", noon.replace(hour=16, minute=59))  # the session ends: flat by 16:59
    assert [e.reason for e in events if isinstance(e, TradeExecuted)] == ["flat_by"]
    balance = s.account.balance  # 50,000 + 50 × 13.75 − 2 × $2.00 = 50,683.50
    assert balance == D("50683.50")
    assert _tick(s, "5214.00", noon.replace(hour=16, minute=59, second=58)) == []
    [eod] = [e for e in _tick(s, "5214.00", noon.replace(hour=16, minute=59, second=59)) if isinstance(e, EndOfDay)]
    assert eod.balance == D("50683.50") and eod.limits["max_loss"]["floor"] == "48683.50"
    assert eod.payload()["type"] == "end_of_day" and eod.payload()["trading_day"] == "2026-11-23"
    assert max_loss.floor(s.account, s.rules) == D("48683.50")
    # The 18:00 reset takes nothing more; a loss the next day does not lower the threshold.
    _tick(s, "5214.00", noon.replace(hour=18, minute=0))
    s.account.balance -= D(500)
    assert max_loss.floor(s.account, s.rules) == D("48683.50")


def test_an_end_of_day_time_the_clock_missed_is_taken_at_the_reset() -> None:
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=ET)
    s = _session(APEX_EOD, "50000.00", noon)
    s.account.balance = s.account.equity = D("50400.00")
    _tick(s, "5200.00", noon.replace(hour=18, minute=5))  # nothing judged at 16:59:59 (a restart)
    max_loss = s.rules.of("max_loss")
    assert max_loss is not None and max_loss.floor(s.account, s.rules) == D("48400.00")


def test_an_end_of_day_time_needs_a_trailing_eod_drawdown_and_a_time() -> None:
    def pack(**params: str) -> RulePack:
        return RulePack("p", 1, "P", "UTC", "00:00", [{"rules": [rule("max_loss", amount="100", **params)]}])

    with pytest.raises(RuleError) as static:
        pack(mode="static", eod_at="16:59:59").rules_for(1, D("1000.00"))
    assert "rules[0].params.eod_at" in str(static.value)
    with pytest.raises(RuleError) as bad:
        pack(mode="trailing_eod", eod_at="late").rules_for(1, D("1000.00"))
    assert "local time" in str(bad.value)
    with pytest.raises(RuleError):
        RulePack("p", 1, "P", "UTC", "00:00", [{"rules": [rule("flat_by", at="25:00")]}]).rules_for(1, D("1000.00"))
