"""Thin gRPC translation for ChallengesService."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import store
from services.common import decimals, pagination
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc


class ChallengesServicer(challenges_pb2_grpc.ChallengesServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ListPlans(
        self, request: challenges_pb2.ListPlansRequest, context: Any
    ) -> challenges_pb2.ListPlansResponse:
        page = pagination.parse(request.page_size, request.page_token)
        after = str(page.cursor.get("after", "")) if page.cursor else None
        async with self.engine.connect() as conn:
            rows = await store.list_plans(conn, after=after, limit=page.size + 1)
        more = len(rows) > page.size
        rows = rows[: page.size]
        return challenges_pb2.ListPlansResponse(
            plans=[
                challenges_pb2.Plan(
                    id=r["id"],
                    name=r["name"],
                    rule_pack=r["rule_pack"],
                    rule_pack_version=r["rule_pack_version"],
                    phase=r["phase"],
                    account_sizes=[decimals.fmt(a) for a in r["account_sizes"]],
                    currency=r["currency"],
                    description=r["description"],
                )
                for r in rows
            ],
            next_page_token=pagination.token({"after": rows[-1]["id"]}) if more else "",
        )
