"""Scenarios of the published rules, run through the simulator (the service's engine)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.challenges import simulate
from services.challenges.domain.engine import Account
from services.challenges.domain.events import Event
from services.challenges.domain.packs import APEX_INTRADAY as APEX
from services.challenges.domain.packs import BUILT_IN
from services.challenges.domain.packs import FTMO_2STEP as FTMO
from services.challenges.domain.packs import TOPSTEP_COMBINE as TOPSTEP
from services.challenges.domain.packs import TOPSTEP_COMBINE_DLL as TOPSTEP_DLL
from services.challenges.domain.rulepacks import RulePack

D = Decimal


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _run(
    tmp: Path, pack: RulePack, balance: str, ticks: list[str], orders: list[str]
) -> tuple[list[dict[str, Any]], Account]:
    t = _csv(tmp / "ticks.csv", "time,symbol,bid,ask", ticks)
    o = _csv(tmp / "orders.csv", "time,symbol,side,quantity", orders)
    out = io.StringIO()
    account = simulate.run(pack, 1, D(balance), t, o, out)
    return [json.loads(line) for line in out.getvalue().splitlines()], account


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_ftmo_daily_loss_breached_by_a_price_move_with_no_trade(tmp_path: Path) -> None:
    events, account = _run(
        tmp_path,
        FTMO,
        "100000",
        ticks=[
            "2026-11-23T09:00:00+00:00,EURUSD,1.09990,1.10000",
            "2026-11-23T10:00:00+00:00,EURUSD,1.09600,1.09610",  # -40 pips x 10 lots + fees: 81% used
            "2026-11-23T11:00:00+00:00,EURUSD,1.09500,1.09510",  # -50 pips: daily floor crossed
            "2026-11-23T12:00:00+00:00,EURUSD,1.10500,1.10510",  # too late: already failed
        ],
        orders=["2026-11-23T09:00:00+00:00,EURUSD,BUY,10"],
    )
    [fill, flatten] = _of(events, "trade_executed")
    assert (fill["price"], fill["commission"]) == ("1.10000", "50.00")
    [breach] = _of(events, "breach")
    assert breach["rule"] == "daily_loss" and breach["hard"] is True
    assert breach["reason"] == "DAILY_LOSS_LIMIT_BREACHED"
    assert breach["observed"]["floor"] == "95000.00"
    assert breach["observed"]["equity"] == "94950.00"  # 10 lots x 50 pips x $10 + $50 commission
    assert breach["observed"]["prices"] == {"EURUSD": "1.09500/1.09510"}
    # Flattened at the breach price, with no action from the trader.
    assert flatten["reason"] == "daily_loss breach" and flatten["price"] == "1.09500"
    assert flatten["realized_pnl"] == "-5000.00"
    assert account.status == "FAILED" and account.balance == D("94900.00")
    assert _of(events, "status_changed")[-1]["to"] == "FAILED"
    assert any(w["rule"] == "daily_loss" for w in _of(events, "rule_warning"))


def test_ftmo_max_loss_over_several_days(tmp_path: Path) -> None:
    # Each day loses $4,000 (under the daily limit); by the third day the static 10% floor breaks.
    ticks, orders = [], []
    for day, (open_px, close_px) in enumerate([("1.10000", "1.09600"), ("1.09600", "1.09200"), ("1.09200", "1.08800")]):
        d = f"2026-11-{23 + day}"
        ticks += [
            f"{d}T09:00:00+00:00,EURUSD,{D(open_px) - D('0.00010')},{open_px}",
            f"{d}T10:00:00+00:00,EURUSD,{close_px},{D(close_px) + D('0.00010')}",
        ]
        orders += [f"{d}T09:00:00+00:00,EURUSD,BUY,10", f"{d}T10:00:00+00:00,EURUSD,SELL,10"]
    events, account = _run(tmp_path, FTMO, "100000", ticks, orders)
    assert account.status == "FAILED"
    assert _of(events, "breach")[0]["rule"] == "max_loss"
    assert len(_of(events, "day_rolled")) == 2


def _topstep_day(day: str, pnl_ticks: int) -> tuple[list[str], list[str]]:
    """One round trip of 5 MNQ contracts ($2 a point each) making `pnl_ticks` points."""
    entry = D("18000.0")
    exit_ = entry + pnl_ticks
    ticks = [f"{day}T15:00:00+00:00,MNQ,{entry - 1},{entry}", f"{day}T16:00:00+00:00,MNQ,{exit_},{exit_ + 1}"]
    orders = [f"{day}T15:00:00+00:00,MNQ,BUY,5", f"{day}T16:00:00+00:00,MNQ,SELL,5"]
    return ticks, orders


def test_topstep_pass_blocked_by_consistency_then_allowed(tmp_path: Path) -> None:
    ticks, orders = [], []
    # 50K combine: target $3,000. Day one makes ~$2,500 of it, day two the rest: best day
    # is far above 50% of the profit, so reaching the target does not pass...
    for day, points in [("2026-11-23", 251), ("2026-11-24", 60)]:
        t, o = _topstep_day(day, points)
        ticks += t
        orders += o
    events, account = _run(tmp_path, TOPSTEP, "50000", ticks, orders)
    assert account.balance - D("50000") >= D("3000")
    assert account.status == "ACTIVE"  # blocked, not failed
    assert _of(events, "final")[0]["blocking"] == ["consistency"]
    # ...until enough further profitable days bring the best day under half of the total.
    for day, points in [("2026-11-25", 200), ("2026-11-26", 200), ("2026-11-27", 200)]:
        t, o = _topstep_day(day, points)
        ticks += t
        orders += o
    events, account = _run(tmp_path, TOPSTEP, "50000", ticks, orders)
    assert account.status == "FUNDED"
    assert _of(events, "status_changed")[-1]["reason"] == "all objectives met"


def test_topstep_soft_daily_loss_pauses_until_next_trading_day(tmp_path: Path) -> None:
    # The Combine has no daily loss limit since 2024-08-25; the optional one is soft.
    events, account = _run(
        tmp_path,
        TOPSTEP_DLL,
        "50000",
        ticks=[
            "2026-11-23T15:00:00+00:00,MNQ,17999.0,18000.0",
            "2026-11-23T16:00:00+00:00,MNQ,17899.0,17900.0",  # -$1,000 + fees: DLL hit
            "2026-11-23T22:30:00+00:00,MNQ,17899.0,17900.0",  # still the same trading day (16:30 CST)
            "2026-11-23T23:30:00+00:00,MNQ,17899.0,17900.0",  # after 17:00 Chicago: a new day
        ],
        orders=[
            "2026-11-23T15:00:00+00:00,MNQ,BUY,5",
            "2026-11-23T22:30:00+00:00,MNQ,BUY,1",  # refused: paused
            "2026-11-23T23:30:00+00:00,MNQ,BUY,1",  # accepted: next trading day
        ],
    )
    [breach] = _of(events, "breach")
    assert breach["rule"] == "daily_loss" and breach["hard"] is False
    statuses = [(e["from"], e["to"]) for e in _of(events, "status_changed")]
    assert ("ACTIVE", "PAUSED") in statuses and ("PAUSED", "ACTIVE") in statuses
    [rejected] = _of(events, "order_rejected")
    assert rejected["reason"] == "CHALLENGE_NOT_ACTIVE"
    assert len(_of(events, "trade_executed")) == 3  # open, flatten, the next day's order
    assert account.status == "ACTIVE"


def test_apex_intraday_trailing_drawdown_follows_peak_equity(tmp_path: Path) -> None:
    # Apex 4.0, 50K: $2,000 trailing from peak equity (floating P&L included), in real time.
    events, account = _run(
        tmp_path,
        APEX,
        "50000",
        ticks=[
            "2026-11-23T15:00:00+00:00,MNQ,17999.0,18000.0",
            "2026-11-23T15:10:00+00:00,MNQ,18150.0,18151.0",  # +$1,500 floating: peak ≈ 51,480
            "2026-11-23T15:20:00+00:00,MNQ,17890.0,17891.0",  # below peak − 2,000 (49,480): breach
        ],
        orders=["2026-11-23T15:00:00+00:00,MNQ,BUY,5"],
    )
    [breach] = _of(events, "breach")
    assert breach["rule"] == "max_loss" and breach["parameters"]["mode"] == "trailing_peak"
    assert D(breach["observed"]["floor"]) == D(breach["observed"]["max_equity_ever"]) - 2000
    assert account.status == "FAILED"


def test_a_restart_in_the_middle_of_a_day_changes_nothing(tmp_path: Path) -> None:
    """The service persists Account as JSON; a session rebuilt from it mid-day must judge
    the rest of the day exactly like one that never stopped."""
    from datetime import datetime

    from services.challenges.domain import engine
    from services.challenges.domain.session import Session

    rules = FTMO.rules_for(1, D("100000"))
    t = lambda s: datetime.fromisoformat(s)  # noqa: E731
    script = [
        ("tick", "2026-11-23T08:00:00+00:00", "1.09990", "1.10000"),
        ("order", "2026-11-23T08:00:00+00:00", "BUY", "5"),
        ("tick", "2026-11-23T12:00:00+00:00", "1.09200", "1.09210"),  # -$4,000: warning
        ("tick", "2026-11-23T23:30:00+00:00", "1.09300", "1.09310"),  # next day (Prague)
        ("tick", "2026-11-24T10:00:00+00:00", "1.00000", "1.00010"),  # crash: max loss
    ]

    def play(steps: list[tuple[str, ...]], s: Session) -> list[Event]:
        out: list[Event] = []
        for kind, when, a, b in steps:
            if kind == "tick":
                out += s.on_tick("EURUSD", D(a), D(b), t(when))
            else:
                out += s.place("EURUSD", a, D(b), t(when))
        return out

    straight = Session(rules, Account.new(D("100000")), simulate.specs())
    engine.start(straight.account, rules, t(script[0][1]))
    all_events = play(script, straight)

    first = Session(rules, Account.new(D("100000")), simulate.specs())
    engine.start(first.account, rules, t(script[0][1]))
    before = play(script[:3], first)
    # "Restart": rebuild from what the service stores (account JSON, positions, last prices).
    revived = Session(
        rules,
        Account.from_json(json.loads(json.dumps(first.account.to_json()))),
        simulate.specs(),
        positions=dict(first.positions),
        quotes=dict(first.quotes),
    )
    after = play(script[3:], revived)
    assert before + after == all_events
    assert revived.account == straight.account
    assert straight.account.status == "FAILED"


def _simulate(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The simulate command line, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.challenges.simulate", *args], capture_output=True, text=True, check=check
    )


def test_simulate_command_line(tmp_path: Path) -> None:
    listed = _simulate("--list-packs").stdout
    assert {json.loads(line)["id"] for line in listed.splitlines()} == {p.id for p in BUILT_IN}
    t = _csv(tmp_path / "t.csv", "time,symbol,bid,ask", ["2026-11-23T09:00:00Z,EURUSD,1.1,1.1001"])
    o = _csv(tmp_path / "o.csv", "time,symbol,side,quantity", ["2026-11-23T09:00:00Z,EURUSD,BUY,999"])
    r = _simulate("--pack", "ftmo-2step", "--balance", "100000", "--ticks", str(t), "--orders", str(o))
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[1]["type"] == "order_rejected" and lines[1]["reason"] == "QUANTITY_OUT_OF_RANGE"
    assert lines[-1]["type"] == "final" and lines[-1]["status"] == "ACTIVE"


def test_simulate_overrides_a_parameter_for_the_run(tmp_path: Path) -> None:
    """--set KIND.PARAM / commission_per_lot: the same ticks and orders, judged touch and beyond."""
    t = _csv(
        tmp_path / "t.csv",
        "time,symbol,bid,ask",
        ["2026-11-23T09:00:00Z,EURUSD,1.10000,1.10000", "2026-11-23T10:00:00Z,EURUSD,1.09500,1.09500"],
    )
    o = _csv(tmp_path / "o.csv", "time,symbol,side,quantity", ["2026-11-23T09:00:00Z,EURUSD,BUY,10"])

    def final(*settings: str) -> dict[str, Any]:
        args = ["--pack", "ftmo-2step", "--balance", "100000", "--ticks", str(t), "--orders", str(o)]
        for s in settings:
            args += ["--set", s]
        r = _simulate(*args)
        return [json.loads(x) for x in r.stdout.splitlines()][-1]  # type: ignore[no-any-return]

    # 10 lots down 50 pips = −$5,000 exactly at FTMO's floor (equity 95,000 with no commission):
    # "below" is allowed; the same at a touch fails.
    assert final("commission_per_lot=0")["status"] == "ACTIVE"
    assert final("commission_per_lot=0", "daily_loss.comparator=touch")["status"] == "FAILED"
    bad = _simulate(
        "--pack", "ftmo-2step", "--balance", "100000", "--ticks", str(t), "--set", "no_rule.x=1", check=False
    )
    assert bad.returncode == 2 and "no_rule.x" in bad.stderr
