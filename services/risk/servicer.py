"""Thin gRPC translation for RiskService."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common import identity, pagination
from services.common.errors import invalid_argument
from services.risk import store
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc


def alert_pb(r: RowMapping) -> risk_pb2.Alert:
    ts = Timestamp()
    ts.FromDatetime(r["created_at"])
    return risk_pb2.Alert(
        id=str(r["id"]),
        challenge_id=str(r["challenge_id"]),
        user_id=str(r["user_id"]),
        kind=r["kind"],
        severity=risk_pb2.AlertSeverity.Value(r["severity"]),
        message=r["message"],
        details_json=json.dumps(r["details"], separators=(",", ":")),
        acknowledged=r["acknowledged"],
        created_at=ts,
    )


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid_argument({field: "must be a UUID"}) from None


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ListAlerts(self, request: risk_pb2.ListAlertsRequest, context: Any) -> risk_pb2.ListAlertsResponse:
        caller = identity.require()
        page = pagination.parse(request.page_size, request.page_token)
        before = None
        if page.cursor:
            try:
                before = (datetime.fromisoformat(page.cursor["t"]), uuid.UUID(page.cursor["id"]))
            except (KeyError, ValueError, TypeError):
                raise invalid_argument({"page_token": "not a token this API issued"}) from None
        challenge_id = parse_uuid(request.challenge_id, "challenge_id") if request.challenge_id else None
        async with self.engine.connect() as conn:
            rows = await store.list_alerts(
                conn,
                user_id=None if caller.is_admin else parse_uuid(caller.user_id, "user"),
                challenge_id=challenge_id,
                kind=request.kind,
                severity=risk_pb2.AlertSeverity.Name(request.severity) if request.severity else "",
                unacknowledged_only=request.unacknowledged_only,
                before=before,
                limit=page.size + 1,
            )
        more = len(rows) > page.size
        rows = rows[: page.size]
        token = pagination.token({"t": rows[-1]["created_at"].isoformat(), "id": str(rows[-1]["id"])}) if more else ""
        return risk_pb2.ListAlertsResponse(alerts=[alert_pb(r) for r in rows], next_page_token=token)
