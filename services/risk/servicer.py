"""Thin gRPC translation for RiskService."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from google.api import httpbody_pb2
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc

from services.common import identity, pagination, sse
from services.common.db import driver
from services.common.errors import invalid_argument, not_found
from services.common.fanout import Fanout
from services.common.ids import parse_uuid
from services.common.rpc import Context
from services.common.slots import Slots
from services.common.structs import struct
from services.common.timestamps import timestamp as _ts
from services.risk import store, upload
from services.risk.consumer import Consumer
from services.risk.domain.metrics import TradeAccumulator, compute
from services.risk.metrics import BadInput

ALERT_COLUMNS = (
    "id, challenge_id, user_id, kind, severity, message, details::text AS details, acknowledged, created_at, sequence"
)


def alert_pb(r: Any) -> risk_pb2.Alert:
    details = r["details"]
    return risk_pb2.Alert(
        id=str(r["id"]),
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        kind=r["kind"],
        severity=risk_pb2.AlertSeverity.Value(r["severity"]),
        message=r["message"],
        details=struct(json.loads(details) if isinstance(details, str) else details),
        acknowledged=r["acknowledged"],
        created_at=_ts(r["created_at"]),
        sequence=r["sequence"],
    )


def score_pb(r: Any) -> risk_pb2.RiskScore:
    factors = r["factors"] if isinstance(r["factors"], dict) else json.loads(r["factors"])
    from services.risk.domain.scoring import WEIGHTS

    return risk_pb2.RiskScore(
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        score=round(r["score"], 2),
        factors=[
            risk_pb2.RiskFactor(
                name=k, value=_ratio(v["value"]), weight=WEIGHTS.get(k, 0.0), explanation=v["explanation"]
            )
            for k, v in factors.items()
        ],
        computed_at=_ts(r["computed_at"]),
    )


def _ratio(x: float) -> float:
    """Ratios on the wire: four decimals (no float noise like -0.0015080000000000648)."""
    return round(x, 4) if math.isfinite(x) else x


def metrics_pb(m: dict[str, Any]) -> risk_pb2.Metrics:
    return risk_pb2.Metrics(
        total_return_ratio=_ratio(m["total_return"]),
        total_trades=m["total_trades"],
        win_rate_ratio=_ratio(m["win_rate"]),
        average_win=m["average_win"],
        average_loss=m["average_loss"],
        profit_factor=_ratio(m["profit_factor"]),
        expectancy=m["expectancy"],
        largest_winning_day=m["largest_winning_day"],
        largest_losing_day=m["largest_losing_day"],
        profitable_days_ratio=_ratio(m["profitable_days_pct"]),
        longest_losing_streak_trades=m["longest_losing_streak_trades"],
        longest_losing_streak_days=m["longest_losing_streak_days"],
        max_drawdown_ratio=_ratio(m["max_drawdown_pct"]),
        max_drawdown_amount=m["max_drawdown_amount"],
        max_drawdown_date=m["max_drawdown_date"],
        time_to_recovery_days=m["time_to_recovery_days"] or 0,
        recovered=m["recovered"],
        sharpe=_ratio(m["sharpe"]),
        sortino=_ratio(m["sortino"]),
        daily=[risk_pb2.DailyPoint(date=d["date"], pnl=d["pnl"], equity=d["equity"]) for d in m["daily"]],
        by_symbol=[
            risk_pb2.SymbolBreakdown(
                symbol=s["symbol"], trades=s["trades"], pnl=s["pnl"], win_rate_ratio=_ratio(s["win_rate"])
            )
            for s in m["by_symbol"]
        ],
    )


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        consumer: Consumer,
        heartbeat: float = sse.HEARTBEAT,
        upload_max_bytes: int = upload.MAX_UPLOAD_BYTES,
        uploads: int = 2,
    ) -> None:
        self.engine = engine
        self.upload_max_bytes = upload_max_bytes
        # A parse holds up to a batch's memory: one upload per user, a couple per process.
        self.uploads = Slots("uploads", "TOO_MANY_UPLOADS", per_user=1, total=uploads)
        self.consumer = consumer
        self.heartbeat = heartbeat
        # One reader of new alerts per process feeds every alert stream (services/common/fanout.py).
        self.alerts: Fanout[int] = Fanout(
            self._alerts_after,
            self._last_alert,
            lambda r: int(r["sequence"]),
            lambda r: r["user_id"],
            lambda: consumer.new_alerts,
            poll=1.0,
        )

    @staticmethod
    def _scope() -> uuid.UUID | None:
        caller = identity.require()
        return None if caller.role in ("admin", "service") else parse_uuid(caller.user_id, "user")

    async def ListAlerts(self, request: risk_pb2.ListAlertsRequest, context: Context) -> risk_pb2.ListAlertsResponse:
        scope = self._scope()
        page = pagination.parse(request.page_size, request.page_token)
        before = pagination.time_id_cursor(page)
        challenge_id = parse_uuid(request.challenge_id, "challenge_id") if request.challenge_id else None
        async with self.engine.connect() as conn:
            rows = await store.list_alerts(
                conn,
                user_id=scope,
                challenge_id=challenge_id,
                kind=request.kind,
                severity=risk_pb2.AlertSeverity.Name(request.severity) if request.severity else "",
                unacknowledged_only=request.unacknowledged_only,
                before=before,
                limit=page.size + 1,
            )
        rows, more = page.cut(rows)
        token = pagination.time_id_token(rows, "created_at", more)
        return risk_pb2.ListAlertsResponse(alerts=[alert_pb(r) for r in rows], next_page_token=token)

    async def AcknowledgeAlert(self, request: risk_pb2.AcknowledgeAlertRequest, context: Context) -> risk_pb2.Alert:
        aid = parse_uuid(request.alert_id, "alert_id")
        scope = self._scope()
        async with driver(self.engine) as conn:
            row = await conn.fetchrow(
                "UPDATE alerts SET acknowledged = true WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) "
                f"RETURNING {ALERT_COLUMNS}",
                aid,
                scope,
            )
        if row is None:
            raise not_found("alert")
        return alert_pb(row)

    async def StreamAlerts(
        self, request: risk_pb2.StreamAlertsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        scope = self._scope()
        if request.after_sequence < 0:
            raise invalid_argument({"after_sequence": "must not be negative"})
        after = sse.resume_after(context, request.after_sequence)
        # Headers now, not with the first alert: a browser's EventSource is "open" at once.
        await context.send_initial_metadata(())
        async for body in sse.stream(self._alert_events(after or None, scope), self.heartbeat):
            yield body

    async def _alert_events(self, after: int | None, scope: uuid.UUID | None) -> AsyncIterator[sse.Event]:
        # From now on, or after the last one a reconnecting browser saw; fed by the one reader.
        async for r in self.alerts.follow(after, scope):
            yield sse.Event("alert", alert_pb(r), int(r["sequence"]))

    async def _alerts_after(self, after: int, limit: int, user_id: uuid.UUID | None) -> list[Any]:
        async with driver(self.engine) as conn:
            return list(
                await conn.fetch(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE sequence > $1 "
                    "AND ($2::uuid IS NULL OR user_id = $2) ORDER BY sequence LIMIT $3",
                    after,
                    user_id,
                    limit,
                )
            )

    async def _last_alert(self) -> int:
        async with driver(self.engine) as conn:
            return int(await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM alerts"))

    async def GetScore(self, request: risk_pb2.GetScoreRequest, context: Context) -> risk_pb2.RiskScore:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        scope = self._scope()
        async with driver(self.engine) as conn:
            row = await conn.fetchrow(
                "SELECT challenge_id, user_id, score, factors::text AS factors, computed_at "
                "FROM risk_scores WHERE challenge_id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
                cid,
                scope,
            )
        if row is None:
            raise not_found("risk score")
        return score_pb(row)

    async def ListScores(self, request: risk_pb2.ListScoresRequest, context: Context) -> risk_pb2.ListScoresResponse:
        scope = self._scope()
        order = request.order_by or "-score"
        column = {"score": "score", "-score": "score", "computed_at": "computed_at", "-computed_at": "computed_at"}.get(
            order
        )
        if column is None:
            raise invalid_argument({"order_by": "one of score, -score, computed_at, -computed_at"})
        direction = "DESC" if order.startswith("-") else "ASC"
        page = pagination.parse(request.page_size, request.page_token)
        offset = page.offset("o")
        async with driver(self.engine) as conn:
            rows = await conn.fetch(
                f"SELECT challenge_id, user_id, score, factors::text AS factors, computed_at FROM risk_scores "
                f"WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY {column} {direction}, challenge_id "
                f"OFFSET $2 LIMIT $3",
                scope,
                offset,
                page.size + 1,
            )
        rows, more = page.cut(rows)
        return risk_pb2.ListScoresResponse(
            scores=[score_pb(r) for r in rows],
            next_page_token=pagination.token({"o": offset + page.size}) if more else "",
        )

    async def GetMetrics(self, request: risk_pb2.GetMetricsRequest, context: Context) -> risk_pb2.Metrics:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        scope = self._scope()
        async with driver(self.engine) as conn:
            st = await conn.fetchrow(
                "SELECT initial_balance FROM challenge_state WHERE challenge_id = $1 "
                "AND ($2::uuid IS NULL OR user_id = $2)",
                cid,
                scope,
            )
            if st is None:
                raise not_found("challenge")
            # Aggregated in SQL; only the closing trades' day and cents travel, as two arrays.
            closing = await conn.fetchrow(
                "SELECT coalesce(array_agg((executed_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01' ORDER BY sequence), "  # noqa: E501
                "'{}') AS days, coalesce(array_agg(round(pnl * 100)::bigint ORDER BY sequence), '{}') AS cents, "
                "coalesce(array_agg(symbol ORDER BY sequence), '{}') AS symbols "
                "FROM fills WHERE challenge_id = $1 AND closing",
                cid,
            )
            daily = await conn.fetch(
                "SELECT (executed_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01' AS day, sum(pnl) AS pnl "
                "FROM fills WHERE challenge_id = $1 GROUP BY 1 ORDER BY 1",
                cid,
            )
        acc = TradeAccumulator()
        acc.add(
            np.asarray(closing["days"], dtype=np.int64),
            np.asarray(closing["cents"], dtype=np.int64),
            np.asarray(closing["symbols"], dtype=object) if closing["symbols"] else None,
        )
        initial = float(st["initial_balance"])
        # Daily equity from every fill (opening commissions included), the initial balance first.
        acc.daily = {int(d["day"]): round(d["pnl"] * 100) for d in daily}
        days = np.array([int(d["day"]) for d in daily], dtype=np.int64)
        equity = initial + np.cumsum([float(d["pnl"]) for d in daily]) if daily else np.empty(0)
        return metrics_pb(compute(acc, initial, days, equity))

    async def AnalyzeTrades(self, request_iterator: Any, context: Context) -> risk_pb2.Metrics:
        """CSV (closed_at,pnl[,symbol]) streamed in chunks; parsed batch by batch, never whole."""

        async def bodies() -> AsyncIterator[bytes]:
            async for chunk in request_iterator:
                yield chunk.data

        caller = identity.require()
        try:
            with self.uploads.hold(caller.user_id):
                acc = await upload.read(bodies(), self.upload_max_bytes)
        except BadInput as exc:
            raise invalid_argument({"body": str(exc)}) from None
        return metrics_pb(compute(acc, 100_000.0))
