"""Auth's admin RPCs: listing users, roles, disabling — and never leaving the platform
without an enabled admin. A mixin of AuthServicer (one gRPC service), kept apart so each
file holds one concern."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.auth.v1 import auth_pb2

from services.auth import store
from services.auth.users import PB_TO_ROLE, user_pb
from services.common import identity, pagination
from services.common.errors import failed_precondition, invalid_argument, not_found
from services.common.ids import parse_uuid
from services.common.rpc import Context


class AdminRpcs:
    engine: AsyncEngine

    async def ListUsers(self, request: auth_pb2.ListUsersRequest, context: Context) -> auth_pb2.ListUsersResponse:
        identity.require_admin()
        page = pagination.parse(request.page_size, request.page_token)
        after = pagination.time_id_cursor(page)
        async with self.engine.connect() as conn:
            rows = await store.list_users(conn, limit=page.size + 1, after=after, email_contains=request.email_contains)
        rows, more = page.cut(rows)
        next_token = pagination.time_id_token(rows, "created_at", more)
        return auth_pb2.ListUsersResponse(users=[user_pb(r) for r in rows], next_page_token=next_token)

    async def SetRole(self, request: auth_pb2.SetRoleRequest, context: Context) -> auth_pb2.User:
        identity.require_admin()
        role = PB_TO_ROLE.get(request.role)
        if role is None:
            raise invalid_argument({"role": "must be TRADER or ADMIN"})
        uid, now = parse_uuid(request.user_id, "user_id"), datetime.now(UTC)
        async with self.engine.begin() as conn:
            before = await store.user_by_id(conn, uid, for_update=True)
            if before is not None and before["role"] == "admin" and role != "admin":
                await self._keep_an_admin(conn, before)
            user = await store.update_user(conn, uid, now, role=role) if before is not None else None
            if user is None:
                raise not_found("user")
            if before is not None and before["role"] != role:
                # A token names its role: tokens issued under the old one must not outlive it.
                await store.cut_off(conn, f"user:{uid}", now)
        return user_pb(user)

    async def SetUserDisabled(self, request: auth_pb2.SetUserDisabledRequest, context: Context) -> auth_pb2.User:
        identity.require_admin()
        uid, now = parse_uuid(request.user_id, "user_id"), datetime.now(UTC)
        async with self.engine.begin() as conn:
            before = await store.user_by_id(conn, uid, for_update=True)
            if before is not None and request.disabled and before["role"] == "admin":
                await self._keep_an_admin(conn, before)
            user = await store.update_user(conn, uid, now, disabled=request.disabled) if before is not None else None
            if user is not None and request.disabled:
                await store.revoke_user_tokens(conn, user["id"], now)
                await store.cut_off(conn, f"user:{user['id']}", now)
        if user is None:
            raise not_found("user")
        return user_pb(user)

    async def _keep_an_admin(self, conn: Any, admin: RowMapping) -> None:
        """Refuse to demote or disable the last enabled admin: nobody could manage the
        platform afterwards but by hand in the database."""
        if admin["disabled"]:
            return
        if await store.count_active_admins(conn, lock=True) <= 1:
            raise failed_precondition("this is the last active admin; make another admin first", reason="LAST_ADMIN")
