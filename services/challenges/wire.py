"""Rows and outbox payloads as the API's messages: one place that knows both shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradesense.challenges.v1 import challenges_pb2 as pb

from services.challenges.domain import days
from services.challenges.domain.engine import Account
from services.challenges.domain.positions import unrealized
from services.challenges.domain.rulepacks import Rules
from services.challenges.domain.rules.base import Objective
from services.challenges.domain.session import OrderRejected, Session, Spec
from services.common import decimals
from services.common.structs import struct
from services.common.timestamps import timestamp as ts

STATUS = {
    name: pb.ChallengeStatus.Value(name) for name in pb.ChallengeStatus.keys() if name != "CHALLENGE_STATUS_UNSPECIFIED"
}
# What the engine writes as a fill's reason when a breach closes positions ("<rule> breach").
BREACH_SUFFIX = " breach"


def challenge_pb(r: Mapping[Any, Any], plan_name: str = "") -> pb.Challenge:
    acct = r["account"]
    return pb.Challenge(
        plan_name=plan_name,
        id=str(r["id"]),
        user_id=str(r["user_id"]),
        status=STATUS[r["status"]],
        plan_id=r["plan_id"],
        phase=r["phase"],
        initial_balance=decimals.money(r["initial_balance"]),
        balance=decimals.money(r["balance"]),
        current_equity=decimals.money(r["equity"]),
        daily_start_equity=decimals.money(acct.get("day_start_equity")),
        max_equity_ever=decimals.money(acct.get("max_equity_ever")),
        created_at=ts(r["created_at"]),
        started_at=ts(r["started_at"]),
        ended_at=ts(r["ended_at"]),
        last_trade_at=ts(r["last_trade_at"]),
        failure_reason=r["failure_reason"],
        currency=r["currency"],
    )


def _fill_reason(raw: str) -> tuple[str, str]:
    """(reason, breached rule): the engine writes a breach's closing fills as "<rule> breach"."""
    if raw.endswith(BREACH_SUFFIX):
        return "breach", raw[: -len(BREACH_SUFFIX)]
    return raw, ""


def lots(quantity: Decimal | None, spec: Spec | None) -> str:
    """A quantity at its instrument's step ("0.50" where the step is 0.01); as stored when the
    instrument is not known here."""
    return decimals.scaled(quantity, spec.quantity_step) if spec is not None else decimals.fmt(quantity)


def price(value: Decimal | None, spec: Spec | None) -> str:
    """A price at its instrument's tick scale ("1.07210", "50010.00"); as stored when unknown."""
    if spec is None or spec.tick_size is None:
        return decimals.fmt(value)
    return decimals.scaled(value, spec.tick_size)


def trade_pb(r: Mapping[Any, Any], spec: Spec | None = None) -> pb.Trade:
    reason, rule = _fill_reason(str(r.get("reason") or ""))
    status = r.get("challenge_status")
    return pb.Trade(
        reason=reason,
        breached_rule=rule,
        challenge_status=STATUS.get(status, 0) if status else 0,  # type: ignore[arg-type]
        id=str(r["id"]),
        challenge_id=str(r["challenge_id"]),
        symbol=r["symbol"],
        side=pb.Side.Value(r["side"]),
        quantity=lots(r["quantity"], spec),
        price=price(r["price"], spec),
        commission=decimals.money(r["commission"]),
        realized_pnl=decimals.money(r["realized_pnl"]),
        executed_at=ts(r["executed_at"]),
        note=r["note"],
        tags=list(r["tags"] or []),
    )


def breach_pb(r: Mapping[Any, Any]) -> pb.Breach:
    return pb.Breach(
        id=str(r["id"]),
        challenge_id=str(r["challenge_id"]),
        rule=r["rule"],
        hard=r["hard"],
        parameters={k: str(v) for k, v in (r["parameters"] or {}).items()},
        observed=struct(r["observed"]),
        occurred_at=ts(r["occurred_at"]),
    )


def rule_pack_pb(r: Mapping[Any, Any]) -> pb.RulePack:
    return pb.RulePack(id=r["id"], version=r["version"], name=r["name"], definition=struct(r["definition"]))


def _payload(r: Mapping[Any, Any]) -> dict[str, Any]:
    raw = r["payload"]
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def outbox_pb(r: Mapping[Any, Any]) -> pb.OutboxEvent:
    raw = r["payload"]
    return pb.OutboxEvent(
        sequence=r["sequence"],
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        type=r["type"],
        # The outbox's JSON as PostgreSQL renders it (payload::text): no decode and re-encode per event.
        payload_json=raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":")),
        occurred_at=ts(r["occurred_at"]),
    )


def _limits(d: Mapping[str, Any] | None) -> dict[str, pb.Limit]:
    return {
        k: pb.Limit(floor=decimals.money(v.get("floor")), limit=decimals.money(v.get("limit")))
        for k, v in (d or {}).items()
    }


def _trade_executed(p: dict[str, Any], spec: Spec | None) -> pb.TradeExecutedEvent:
    reason, rule = _fill_reason(str(p.get("reason", "")))
    quantity = lambda k: lots(Decimal(p[k]), spec) if p.get(k) not in (None, "") else ""  # noqa: E731
    return pb.TradeExecutedEvent(
        quantity=quantity("quantity"),
        position=quantity("position"),
        trade_id=str(p.get("trade_id", "")),
        symbol=p.get("symbol", ""),
        side=pb.Side.Value(p["side"]) if p.get("side") in ("BUY", "SELL") else pb.SIDE_UNSPECIFIED,
        price=price(Decimal(p["price"]), spec) if p.get("price") else "",
        **{k: decimals.money(p.get(k)) for k in ("commission", "realized_pnl", "balance", "equity", "notional")},
        reason=reason,
        breached_rule=rule,
        limits=_limits(p.get("limits")),
    )


def _status_changed(p: dict[str, Any]) -> pb.StatusChangedEvent:
    known = {"type", "time", "from", "to", "reason", "next_challenge_id"}
    return pb.StatusChangedEvent(
        from_status=STATUS.get(p.get("from") or "", 0),  # type: ignore[arg-type]
        to_status=STATUS.get(p.get("to") or "", 0),  # type: ignore[arg-type]
        reason=str(p.get("reason", "")),
        next_challenge_id=str(p.get("next_challenge_id") or ""),
        details=struct({k: v for k, v in p.items() if k not in known}),
    )


def _set_payload(e: pb.Event, t: str, p: dict[str, Any], specs: Mapping[str, Spec]) -> None:
    if t == "trade_executed":
        e.trade_executed.CopyFrom(_trade_executed(p, specs.get(str(p.get("symbol", "")))))
    elif t == "equity_updated":
        e.equity_updated.CopyFrom(pb.EquityUpdatedEvent(equity=decimals.money(p.get("equity"))))
    elif t == "rule_warning":
        e.rule_warning.CopyFrom(
            pb.RuleWarningEvent(
                rule=str(p.get("rule", "")),
                used_ratio=str(p.get("used_share", "")),
                limit=decimals.money(p.get("limit")),
                current=decimals.money(p.get("current")),
            )
        )
    elif t == "status_changed":
        e.status_changed.CopyFrom(_status_changed(p))
    elif t == "day_rolled":
        e.day_rolled.CopyFrom(
            pb.DayRolledEvent(
                trading_day=str(p.get("trading_day", "")),
                day_start_balance=decimals.money(p.get("day_start_balance")),
                day_start_equity=decimals.money(p.get("day_start_equity")),
                limits=_limits(p.get("limits")),
            )
        )
    elif t == "end_of_day":
        e.end_of_day.CopyFrom(
            pb.EndOfDayEvent(
                trading_day=str(p.get("trading_day", "")),
                balance=decimals.money(p.get("balance")),
                limits=_limits(p.get("limits")),
            )
        )
    elif t == "breach":
        e.breach.CopyFrom(
            pb.BreachEvent(
                rule=str(p.get("rule", "")),
                hard=bool(p.get("hard")),
                reason=str(p.get("reason", "")),
                parameters={k: str(v) for k, v in (p.get("parameters") or {}).items()},
                observed=struct(p.get("observed")),
            )
        )


def event_pb(r: Mapping[Any, Any], specs: Mapping[str, Spec] | None = None) -> pb.Event:
    """An outbox row as the API's typed event: `type` names it and its field of that name is set
    (quantities at their instrument's step where `specs` know it, as trades show them)."""
    e = pb.Event(
        sequence=r["sequence"],
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        type=r["type"],
        occurred_at=ts(r["occurred_at"]),
    )
    _set_payload(e, r["type"], _payload(r), specs or {})
    return e


def position_pb(cid: uuid.UUID, r: Mapping[Any, Any], session: Session, fees: Decimal | None) -> pb.Position:
    """An open position, marked at the current quote (the price that would close it)."""
    pos = session.positions[r["symbol"]]
    q = session.quotes.get(r["symbol"])
    spec = session.specs.get(r["symbol"])
    mark, upnl = "", ""
    if q is not None and spec is not None:
        mark = price(q.bid if pos.quantity > 0 else q.ask, spec)
        try:
            upnl = decimals.money(unrealized(pos, q.bid, q.ask, spec.contract_size, session.rate(pos.symbol)))
        except OrderRejected:  # no conversion rate: not markable now
            upnl = ""
    return pb.Position(
        challenge_id=str(cid),
        symbol=r["symbol"],
        quantity=lots(r["quantity"], spec),
        avg_price=price(r["avg_price"], spec),
        mark_price=mark,
        unrealized_pnl=upnl,
        stop_loss=price(r["stop_loss"], spec),
        take_profit=price(r["take_profit"], spec),
        side=pb.LONG if pos.quantity > 0 else pb.SHORT,
        opened_at=ts(r.get("opened_at")),
        fees=decimals.money(fees if fees is not None else Decimal(0)),
    )


LIVE = ("ACTIVE", "PAUSED")


def dashboard(c: pb.Challenge, row: Mapping[Any, Any], rules: Rules, now: datetime) -> pb.Challenge:
    """What a dashboard shows beside the balance, set on a live challenge's message: the next
    reset, the trading day, the equity floors of the daily and maximum loss, a pause's end."""
    if row["status"] not in LIVE:
        return c
    a = Account.from_json(row["account"])
    c.next_reset_at.CopyFrom(ts(days.next_reset(now, rules.tz, rules.reset_time).astimezone(UTC)))
    if a.day is not None:
        c.trading_day = a.day.isoformat()
    levels = rules.levels(a)
    c.daily_loss_floor = decimals.money(levels["daily_loss"]["floor"]) if "daily_loss" in levels else ""
    c.max_loss_floor = decimals.money(levels["max_loss"]["floor"]) if "max_loss" in levels else ""
    if a.paused_until is not None:
        c.paused_until.CopyFrom(ts(a.paused_until))
    return c


# What each rule's objective is counted in (limit and current); room_left is money for the
# money rules and for consistency (the profit still needed).
_MONEY_RULES = {"daily_loss", "max_loss", "profit_target"}
_RATIO_RULES = {"consistency"}
OBJECTIVE = {"OK": pb.OK, "WARNING": pb.WARNING, "BREACHED": pb.BREACHED, "MET": pb.MET}


def objective_pb(o: Objective) -> pb.Objective:
    if o.rule in _MONEY_RULES:
        unit, limit, current, room = (
            "money",
            decimals.money(o.limit),
            decimals.money(o.current),
            decimals.money(o.room_left),
        )
    elif o.rule in _RATIO_RULES:
        four = Decimal("0.0001")
        unit, limit, current, room = (
            "ratio",
            decimals.scaled(o.limit, four),
            decimals.scaled(o.current, four),
            (decimals.money(o.room_left)),
        )
    else:
        unit, limit, current, room = "days", decimals.fmt(o.limit), decimals.fmt(o.current), decimals.fmt(o.room_left)
    return pb.Objective(rule=o.rule, limit=limit, current=current, room_left=room, state=OBJECTIVE[o.state], unit=unit)
