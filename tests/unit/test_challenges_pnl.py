"""P&L and rule arithmetic: properties that must hold for any fills and prices."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.challenges.domain import days, engine
from services.challenges.domain.engine import Account
from services.challenges.domain.packs import FTMO_2STEP as FTMO
from services.challenges.domain.packs import TOPSTEP_COMBINE as TOPSTEP
from services.challenges.domain.positions import ZERO, Position, apply_fill, money, unrealized

D = Decimal
lots = st.integers(1, 5000).map(lambda n: D(n) / 100)  # 0.01 .. 50 lots
prices = st.integers(50_000, 200_000).map(lambda n: D(n) / 100_000)  # 0.5 .. 2.0, 5 decimals
EURUSD = D(100_000)


@given(lots, prices, prices)
def test_round_trip_pnl_is_exactly_the_price_move(q: Decimal, p1: Decimal, p2: Decimal) -> None:
    flat = Position("EURUSD", ZERO, ZERO)
    opened = apply_fill(flat, q, p1, EURUSD)
    closed = apply_fill(opened.position, -q, p2, EURUSD)
    assert closed.position.is_flat
    assert closed.realized == money(q * (p2 - p1) * EURUSD)


@given(lots, lots, prices, prices)
def test_closing_in_two_parts_equals_closing_at_once(a: Decimal, b: Decimal, p1: Decimal, p2: Decimal) -> None:
    pos = apply_fill(Position("X", ZERO, ZERO), a + b, p1, EURUSD).position
    once = apply_fill(pos, -(a + b), p2, EURUSD).realized
    part1 = apply_fill(pos, -a, p2, EURUSD)
    part2 = apply_fill(part1.position, -b, p2, EURUSD)
    assert abs(part1.realized + part2.realized - once) <= D("0.01")  # at most a cent of rounding
    assert part1.position.avg_price == p1  # reducing keeps the entry price


@given(lots, lots, prices, prices)
def test_flip_realises_the_old_position_and_opens_the_rest_at_the_fill(
    q: Decimal, extra: Decimal, p1: Decimal, p2: Decimal
) -> None:
    long = apply_fill(Position("X", ZERO, ZERO), q, p1, EURUSD).position
    flipped = apply_fill(long, -(q + extra), p2, EURUSD)
    assert flipped.position.quantity == -extra and flipped.position.avg_price == p2
    assert flipped.realized == money(q * (p2 - p1) * EURUSD)


@given(lots, prices, prices, st.integers(1, 50))
def test_unrealized_uses_the_closing_side_and_matches_realized(
    q: Decimal, p1: Decimal, p2: Decimal, spread: int
) -> None:
    s = D(spread) / 100_000
    bid, ask = p2, p2 + s
    long = Position("X", q, p1)
    short = Position("X", -q, p1)
    assert money(unrealized(long, bid, ask, EURUSD)) == apply_fill(long, -q, bid, EURUSD).realized
    assert money(unrealized(short, bid, ask, EURUSD)) == apply_fill(short, q, ask, EURUSD).realized


def test_one_eurusd_lot_pip_is_ten_dollars_and_jpy_converts() -> None:
    pos = Position("EURUSD", D(1), D("1.10000"))
    assert unrealized(pos, D("1.10010"), D("1.10020"), EURUSD) == D("10.00000")
    jpy = Position("USDJPY", D(1), D("150.000"))
    # 1 lot × 100,000 × 0.100 JPY = 10,000 JPY; at 150.100 JPY per USD that is $66.62.
    assert money(unrealized(jpy, D("150.100"), D("150.110"), EURUSD, 1 / D("150.100"))) == D("66.62")


@settings(max_examples=300)
@given(st.lists(st.integers(-3000, 3000).map(lambda n: D(n)), min_size=1, max_size=30))
def test_trailing_floor_never_moves_down_and_stops_at_the_lock(moves: list[Decimal]) -> None:
    rules = TOPSTEP.rules_for(1, D("50000.00"))  # trails the end-of-day balance, locks at the start
    a = Account.new(D("50000.00"))
    a.status = engine.ACTIVE
    max_loss = rules.of("max_loss")
    assert max_loss is not None
    last = max_loss.floor(a, rules)
    for m in moves:
        a.balance += m
        a.max_eod_balance = max(a.max_eod_balance, a.balance)  # what a day roll does
        floor = max_loss.floor(a, rules)
        assert floor >= last
        assert floor <= rules.initial_balance
        last = floor


def test_ftmo_levels() -> None:
    r = FTMO.rules_for(1, D("100000.00"))
    a = Account.new(D("100000.00"))
    a.status = engine.ACTIVE
    limits = (r.limit("profit_target"), r.limit("daily_loss"), r.limit("max_loss"))
    assert limits == (D("10000.00"), D("5000.00"), D("10000.00"))
    daily, max_loss = r.of("daily_loss"), r.of("max_loss")
    assert daily is not None and max_loss is not None
    assert daily.floor(a, r) == D("95000.00") and max_loss.floor(a, r) == D("90000.00")
    assert FTMO.rules_for(2, D("100000.00")).limit("profit_target") == D("5000.00")


def test_trading_days_across_daylight_saving_changes() -> None:
    chicago, prague = ZoneInfo("America/Chicago"), ZoneInfo("Europe/Prague")
    five_pm, midnight = time(17), time(0)
    t = lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC)  # noqa: E731
    # Before the US change (CST, UTC-6) the 17:00 reset is 23:00 UTC...
    assert days.trading_day(t("2026-03-05T22:59"), chicago, five_pm).isoformat() == "2026-03-05"
    assert days.trading_day(t("2026-03-05T23:00"), chicago, five_pm).isoformat() == "2026-03-06"
    # ...after it (CDT, UTC-5) it is 22:00 UTC.
    assert days.trading_day(t("2026-03-09T21:59"), chicago, five_pm).isoformat() == "2026-03-09"
    assert days.trading_day(t("2026-03-09T22:00"), chicago, five_pm).isoformat() == "2026-03-10"
    assert days.day_start(days.trading_day(t("2026-03-09T22:00"), chicago, five_pm), chicago, five_pm) == t(
        "2026-03-09T22:00"
    )
    # Prague midnight: 23:00 UTC in winter, 22:00 UTC after the EU change on 2026-03-29.
    assert days.trading_day(t("2026-03-27T23:00"), prague, midnight).isoformat() == "2026-03-28"
    assert days.trading_day(t("2026-03-29T22:00"), prague, midnight).isoformat() == "2026-03-30"
    assert days.trading_day(t("2026-03-29T21:59"), prague, midnight).isoformat() == "2026-03-29"


def test_account_json_covers_every_field_and_round_trips() -> None:
    """to_json is written out by hand (it runs on every order): a field added to Account
    and forgotten there would silently vanish from the stored state."""
    from dataclasses import fields

    a = Account(
        "PAUSED",
        Decimal("100000.00"),
        Decimal("99990.50"),
        Decimal("99980.25"),
        date(2026, 3, 29),
        Decimal("100010.00"),
        Decimal("100000.00"),
        Decimal("100200.00"),
        Decimal("100100.00"),
        3,
        date(2026, 3, 27),
        {"2026-03-27": Decimal("-12.50")},
        datetime(2026, 3, 30, 7, tzinfo=UTC),
        ["daily_loss"],
    )
    assert set(a.to_json()) == {f.name for f in fields(Account)}
    assert Account.from_json(a.to_json()) == a
    assert Account.from_json(Account.new(Decimal("5000")).to_json()) == Account.new(Decimal("5000"))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # challenge
            st.dictionaries(
                st.sampled_from(["BTCUSD", "EURUSD", "XAUUSD"]),
                st.tuples(st.sampled_from([-2.0, -0.5, 0.01, 1.0, 3.0]), st.floats(50, 150)),
                max_size=3,
            ),
        ),
        max_size=40,
    ),
    st.floats(60, 140),
)
def test_mark_index_matches_a_brute_force_revaluation(ops: list[Any], price: float) -> None:
    """Orders replace a challenge's rows in place (swap-delete, spare capacity); after any
    sequence of them, one tick per symbol gives every challenge the equity a from-scratch
    computation gives, and each book holds exactly the live positions."""
    from services.challenges.domain.marking import MarkIndex

    index = MarkIndex(capacity=2)  # small: growth is exercised too
    truth: dict[int, dict[str, tuple[float, float]]] = {}
    for cid, positions in ops:
        index.set_account(cid, balance=1000.0 * (cid + 1), floor=900.0 * (cid + 1), warn=950.0 * (cid + 1), peak=0.0)
        index.set_positions(cid, [(sym, q, avg, 2.0, math.nan, math.nan) for sym, (q, avg) in positions.items()])
        truth[cid] = dict(positions)
    for sym in ("BTCUSD", "EURUSD", "XAUUSD"):
        index.on_price(sym, price, price + 0.5)
    for cid, positions in truth.items():
        expect = 1000.0 * (cid + 1) + sum(
            q * ((price if q > 0 else price + 0.5) - avg) * 2.0 for q, avg in positions.values()
        )
        slot = index.slot_of[cid]
        assert index.equity(np.array([slot]))[0] == pytest.approx(expect, rel=1e-9, abs=1e-6)
    for sym, book in index.books.items():
        live = sorted(int(s) for s in book.slots[: book.n])
        assert live == sorted(index.slot_of[c] for c, p in truth.items() if sym in p)
        assert book.row_of == {int(s): i for i, s in enumerate(book.slots[: book.n])}
