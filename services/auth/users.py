"""A user as the API shows it, and the roles' names on the wire."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping
from tradesense.auth.v1 import auth_pb2

from services.common.timestamps import timestamp as _ts

ROLE_TO_PB = {"trader": auth_pb2.TRADER, "admin": auth_pb2.ADMIN}
PB_TO_ROLE = {v: k for k, v in ROLE_TO_PB.items()}


def user_pb(row: RowMapping) -> auth_pb2.User:
    return auth_pb2.User(
        id=str(row["id"]),
        email=row["email"],
        display_name=row["display_name"],
        role=ROLE_TO_PB.get(row["role"], auth_pb2.ROLE_UNSPECIFIED),
        disabled=row["disabled"],
        created_at=_ts(row["created_at"]),
    )
