"""Rows and outbox payloads as the API's messages: one place that knows both shapes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from tradesense.challenges.v1 import challenges_pb2 as pb

from services.common import decimals
from services.common.structs import struct

STATUS = {
    name: pb.ChallengeStatus.Value(name) for name in pb.ChallengeStatus.keys() if name != "CHALLENGE_STATUS_UNSPECIFIED"
}
# What the engine writes as a fill's reason when a breach closes positions ("<rule> breach").
BREACH_SUFFIX = " breach"


def ts(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    t = Timestamp()
    t.FromDatetime(dt)
    return t


def challenge_pb(r: Mapping[Any, Any]) -> pb.Challenge:
    acct = r["account"]
    return pb.Challenge(
        id=str(r["id"]),
        user_id=str(r["user_id"]),
        status=STATUS[r["status"]],
        plan_id=r["plan_id"],
        phase=r["phase"],
        initial_balance=decimals.fmt(r["initial_balance"]),
        balance=decimals.fmt(r["balance"]),
        current_equity=decimals.fmt(r["equity"]),
        daily_start_equity=str(acct.get("day_start_equity", "")),
        max_equity_ever=str(acct.get("max_equity_ever", "")),
        created_at=ts(r["created_at"]),
        started_at=ts(r["started_at"]),
        ended_at=ts(r["ended_at"]),
        last_trade_at=ts(r["last_trade_at"]),
        failure_reason=r["failure_reason"],
        currency=r["currency"],
    )


def trade_pb(r: Mapping[Any, Any]) -> pb.Trade:
    return pb.Trade(
        id=str(r["id"]),
        challenge_id=str(r["challenge_id"]),
        symbol=r["symbol"],
        side=pb.Side.Value(r["side"]),
        quantity=decimals.fmt(r["quantity"]),
        price=decimals.fmt(r["price"]),
        commission=decimals.fmt(r["commission"]),
        realized_pnl=decimals.fmt(r["realized_pnl"]),
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
    return {k: pb.Limit(floor=str(v.get("floor", "")), limit=str(v.get("limit", ""))) for k, v in (d or {}).items()}


def _trade_executed(p: dict[str, Any]) -> pb.TradeExecutedEvent:
    reason = str(p.get("reason", ""))
    rule = ""
    if reason.endswith(BREACH_SUFFIX):
        reason, rule = "breach", reason[: -len(BREACH_SUFFIX)]
    return pb.TradeExecutedEvent(
        trade_id=str(p.get("trade_id", "")),
        symbol=p.get("symbol", ""),
        side=pb.Side.Value(p["side"]) if p.get("side") in ("BUY", "SELL") else pb.SIDE_UNSPECIFIED,
        **{k: str(p.get(k, "")) for k in ("quantity", "price", "commission", "realized_pnl", "position")},
        **{k: str(p.get(k, "")) for k in ("balance", "equity", "notional")},
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


def _set_payload(e: pb.Event, t: str, p: dict[str, Any]) -> None:
    if t == "trade_executed":
        e.trade_executed.CopyFrom(_trade_executed(p))
    elif t == "equity_updated":
        e.equity_updated.CopyFrom(pb.EquityUpdatedEvent(equity=str(p.get("equity", ""))))
    elif t == "rule_warning":
        e.rule_warning.CopyFrom(
            pb.RuleWarningEvent(
                rule=str(p.get("rule", "")),
                used_ratio=str(p.get("used_share", "")),
                limit=str(p.get("limit", "")),
                current=str(p.get("current", "")),
            )
        )
    elif t == "status_changed":
        e.status_changed.CopyFrom(_status_changed(p))
    elif t == "day_rolled":
        e.day_rolled.CopyFrom(
            pb.DayRolledEvent(
                trading_day=str(p.get("trading_day", "")),
                day_start_balance=str(p.get("day_start_balance", "")),
                day_start_equity=str(p.get("day_start_equity", "")),
                limits=_limits(p.get("limits")),
            )
        )
    elif t == "end_of_day":
        e.end_of_day.CopyFrom(
            pb.EndOfDayEvent(
                trading_day=str(p.get("trading_day", "")),
                balance=str(p.get("balance", "")),
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


def event_pb(r: Mapping[Any, Any]) -> pb.Event:
    """An outbox row as the API's typed event: `type` names it and its field of that name is set."""
    e = pb.Event(
        sequence=r["sequence"],
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        type=r["type"],
        occurred_at=ts(r["occurred_at"]),
    )
    _set_payload(e, r["type"], _payload(r))
    return e
