"""A stop loss or take profit must sit on the far side of the price that closes the resulting
position (the bid for a long, the ask for a short), or the order is refused and nothing fills."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.challenges import simulate
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.packs import FTMO_2STEP
from services.challenges.domain.session import OrderRejected, Session

D = Decimal
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _session() -> Session:
    r = FTMO_2STEP.rules_for(1, D("100000.00"))
    s = Session(r, Account.new(r.initial_balance), simulate.specs())
    engine.start(s.account, r, NOW)
    s.on_tick("EURUSD", D("1.10000"), D("1.10020"), NOW)
    return s


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit", "reason"),
    [
        ("BUY", "1.10000", None, "STOP_LOSS_WRONG_SIDE"),  # at the bid: would fire at once
        ("BUY", "1.10100", None, "STOP_LOSS_WRONG_SIDE"),
        ("BUY", None, "1.09900", "TAKE_PROFIT_WRONG_SIDE"),
        ("SELL", "1.10010", None, "STOP_LOSS_WRONG_SIDE"),  # below the ask a short's stop fires
        ("SELL", None, "1.10020", "TAKE_PROFIT_WRONG_SIDE"),
    ],
)
def test_a_level_on_the_wrong_side_is_refused_and_nothing_fills(
    side: str, stop_loss: str | None, take_profit: str | None, reason: str
) -> None:
    s = _session()
    with pytest.raises(OrderRejected) as refused:
        s.place(
            "EURUSD",
            side,
            D("1"),
            NOW,
            D(stop_loss) if stop_loss else None,
            D(take_profit) if take_profit else None,
        )
    assert refused.value.reason == reason
    assert refused.value.field == ("stop_loss" if stop_loss else "take_profit")
    assert s.flat and s.account.balance == D("100000.00")


def test_levels_on_the_right_side_are_kept_and_fire_as_set() -> None:
    s = _session()
    s.place("EURUSD", "BUY", D("1"), NOW, D("1.09900"), D("1.10200"))
    assert s.stops["EURUSD"].stop_loss == D("1.09900")
    events = s.on_tick("EURUSD", D("1.09890"), D("1.09910"), NOW)
    assert [e.reason for e in events if hasattr(e, "reason") and e.reason] == ["stop_loss"]  # type: ignore[attr-defined]
    assert s.flat


def test_a_level_on_an_order_that_closes_the_position_is_refused() -> None:
    s = _session()
    s.place("EURUSD", "BUY", D("1"), NOW)
    with pytest.raises(OrderRejected) as refused:
        s.place("EURUSD", "SELL", D("1"), NOW, D("1.20000"))
    assert refused.value.reason == "STOPS_ON_FLAT"
