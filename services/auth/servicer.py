"""Thin gRPC translation for AuthService: protobuf in, domain + store, protobuf out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth import cookies, store
from services.auth.admin_rpcs import AdminRpcs
from services.auth.domain import emails, passwords, tokens
from services.auth.domain.throttle import ThrottlePolicy
from services.auth.keyed_locks import KeyedLocks
from services.auth.keyring import KeyRing
from services.auth.users import user_pb
from services.common import identity
from services.common.client_address import ClientAddresses
from services.common.errors import (
    ServiceError,
    already_exists,
    invalid_argument,
    not_found,
    unauthenticated,
)
from services.common.ids import parse_uuid
from services.common.rpc import Context

log = structlog.get_logger("auth")

INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
# Answers that carry tokens: no cache on the way (browser, proxy) may keep them.
NO_STORE = [("cache-control", "no-store"), ("pragma", "no-cache")]


def _throttled(until: datetime, now: datetime) -> ServiceError:
    retry = max(1, int((until - now).total_seconds()))
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "too many failed attempts; try again later",
        reason="LOGIN_THROTTLED",
        metadata={"retry_after_seconds": str(retry)},
    )


def _bad_credentials() -> ServiceError:
    # One answer for unknown email, wrong password and malformed email alike.
    return unauthenticated("invalid email or password", reason=INVALID_CREDENTIALS)


class AuthServicer(AdminRpcs, auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        token_settings: tokens.TokenSettings,
        hasher: passwords.Hasher,
        throttle: ThrottlePolicy,
        service_clients: dict[str, str],
        address_free_failures: int = 20,
        failure_window: timedelta = timedelta(minutes=15),
        addresses: ClientAddresses | None = None,
        secure_cookies: bool = True,
    ) -> None:
        self.addresses = addresses or ClientAddresses()
        self.checking = KeyedLocks()
        self.failure_window = failure_window
        self.engine = engine
        self.keyring = keyring
        self.tokens = token_settings
        self.hasher = hasher
        self.throttle = throttle
        self.address_throttle = ThrottlePolicy(
            free_failures=address_free_failures,
            base_lock_seconds=throttle.base,
            max_lock_seconds=throttle.max,
        )
        self.service_clients = service_clients
        self.secure = secure_cookies

    # --- helpers ---------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC)

    async def _issue(
        self, conn: Any, user: RowMapping, family_id: uuid.UUID, now: datetime, started: datetime
    ) -> auth_pb2.TokenPair:
        """A token pair of session `family_id`, begun at `started`: the refresh token never
        outlives the session's absolute lifetime (shorter for an admin)."""
        self.keyring.refresh_if_changed()
        key = self.keyring.active
        access = tokens.issue_access_token(
            key=key.private,
            kid=key.kid,
            user_id=str(user["id"]),
            role=user["role"],
            now=now,
            settings=self.tokens,
            session_id=str(family_id),
        )
        refresh, refresh_hash = tokens.new_refresh_token()
        await store.insert_refresh(
            conn,
            family_id=family_id,
            user_id=user["id"],
            token_hash=refresh_hash,
            now=now,
            expires_at=min(now + self.tokens.refresh_ttl, self.tokens.session_ends(started, user["role"])),
            session_started_at=started,
        )
        return auth_pb2.TokenPair(
            access_token=access,
            refresh_token=refresh,
            token_type="Bearer",
            expires_in=int(self.tokens.access_ttl.total_seconds()),
            user=user_pb(user),
        )

    async def _reserve(self, conn: Any, account_key: str, now: datetime) -> None:
        """Count a password check on an account before making it; refuse it when locked out."""
        p = self.throttle
        until = await store.reserve_attempt(conn, account_key, now, self.failure_window, p.free_failures, p.base, p.max)
        if until is not None:
            raise _throttled(until, now)

    # --- public RPCs -------------------------------------------------------------------

    async def Register(self, request: auth_pb2.RegisterRequest, context: Context) -> auth_pb2.RegisterResponse:
        violations: dict[str, str] = {}
        normalised = emails.normalise(request.email)
        if normalised is None:
            violations["email"] = emails.problem(request.email.strip()) or "must be a valid email address"
        email, email_key = normalised or ("", "")
        why = passwords.policy_violation(request.password, email)
        if why:
            violations["password"] = why
        display_name = request.display_name.strip()
        if len(display_name) > 100:
            violations["display_name"] = "must be at most 100 characters"
        if len(request.idempotency_key) > 200:
            violations["idempotency_key"] = "must be at most 200 characters"
        if violations:
            raise invalid_argument(violations)
        request_hash = hashlib.sha256(f"{email_key}\x00{display_name}".encode()).hexdigest()
        password_hash = await asyncio.to_thread(self.hasher.hash, request.password)
        now = self._now()
        async with self.engine.begin() as conn:
            if request.idempotency_key:
                # Serialise retries of one key; the first result is the answer for all.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "register:" + request.idempotency_key}
                )
                seen = await store.registration_for_key(conn, request.idempotency_key)
                if seen is not None:
                    if seen["request_hash"] != request_hash:
                        raise already_exists(
                            "idempotency key already used for a different request", reason="IDEMPOTENCY_KEY_REUSED"
                        )
                    user = await store.user_by_id(conn, seen["user_id"])
                    assert user is not None
                    return auth_pb2.RegisterResponse(user=user_pb(user))
            user = await store.insert_user(
                conn,
                email=email,
                email_key=email_key,
                display_name=display_name,
                password_hash=password_hash,
                now=now,
            )
            if user is None:
                raise already_exists("an account with this email already exists", reason="EMAIL_TAKEN")
            if request.idempotency_key:
                await store.remember_registration(conn, request.idempotency_key, user["id"], request_hash)
        log.info("user registered", user_id=str(user["id"]))
        return auth_pb2.RegisterResponse(user=user_pb(user))

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.TokenPair:
        normalised = emails.normalise(request.email)
        email_key = normalised[1] if normalised else request.email.strip().casefold()[:254]
        # One password check per account at a time in this process, each counted before it
        # is made (see store.reserve_attempt): concurrent wrong guesses stop at the policy's
        # number, concurrent right ones (many tabs, a bot) each go through in turn.
        async with self.checking.hold(f"account:{email_key}"):
            return await self._login(request, context, normalised, email_key)

    async def _login(
        self, request: auth_pb2.LoginRequest, context: Context, normalised: tuple[str, str] | None, email_key: str
    ) -> auth_pb2.TokenPair:
        account_key, addr_key = f"account:{email_key}", f"addr:{self.addresses.of(context)}"
        now = self._now()
        async with self.engine.begin() as conn:
            # The address's state is read, not reserved: a correct login must not count
            # against everyone behind the same address.
            addr = (await store.throttle_state(conn, [addr_key])).get(addr_key)
            if addr is not None and addr["locked_until"] is not None and addr["locked_until"] > now:
                raise _throttled(addr["locked_until"], now)
            await self._reserve(conn, account_key, now)
        async with self.engine.connect() as conn:
            user = await store.user_by_email_key(conn, email_key) if normalised else None
        stored_hash = user["password_hash"] if user else self.hasher.dummy_hash
        ok = await asyncio.to_thread(self.hasher.verify, stored_hash, request.password)
        # A disabled account answers exactly as a wrong password does: no answer may confirm
        # that a password is right.
        if not ok or user is None or user["disabled"] or len(request.password) > passwords.MAX_LENGTH:
            async with self.engine.begin() as conn:
                failures = await store.record_failure(conn, addr_key, now, self.failure_window)
                until = self.address_throttle.lock_after(failures, now)
                if until is not None:
                    await store.set_lock(conn, addr_key, until)
            log.info("login failed", reason="disabled" if ok and user is not None else "bad_credentials")
            raise _bad_credentials()
        new_hash = None
        if self.hasher.needs_rehash(user["password_hash"]):
            new_hash = await asyncio.to_thread(self.hasher.hash, request.password)
        async with self.engine.begin() as conn:
            await store.clear_throttle(conn, account_key)
            if new_hash is not None:
                await store.update_user(conn, user["id"], now, password_hash=new_hash)
            pair = await self._issue(conn, user, uuid.uuid4(), now, started=now)
        log.info("login", user_id=str(user["id"]), rehashed=new_hash is not None)
        return await self._answer(context, pair, request.return_refresh_token)

    async def _answer(self, context: Context, pair: auth_pb2.TokenPair, wanted: bool) -> auth_pb2.TokenPair:
        """The session goes to the browser in HttpOnly cookies (services/auth/cookies.py); the
        refresh token is in the body only for an API client that asked, never for a browser,
        whose script must not be able to read it. Never cached on the way."""
        t = self.tokens
        await context.send_initial_metadata(
            [
                *cookies.issued(pair.access_token, pair.refresh_token, t.access_ttl, t.refresh_ttl, self.secure),
                *NO_STORE,
            ]
        )
        if not wanted or cookies.from_browser(context.invocation_metadata()):
            pair.refresh_token = ""
        return pair

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.TokenPair:
        # The body's token (API clients), or the browser's cookie (the console keeps none).
        presented = request.refresh_token or cookies.read(context.invocation_metadata(), cookies.REFRESH)
        if not presented:
            raise invalid_argument({"refresh_token": "is required"})
        now = self._now()
        reused = False
        async with self.engine.begin() as conn:
            row = await store.refresh_by_hash(conn, tokens.hash_refresh_token(presented))
            if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
                raise unauthenticated("refresh token is not valid", reason="REFRESH_TOKEN_INVALID")
            if row["rotated_at"] is not None:
                # Reuse of a rotated token: someone holds a copy. The whole session ends: its
                # refresh tokens and the access tokens already minted from them.
                await store.revoke_family(conn, row["family_id"], now)
                await store.cut_off(conn, f"session:{row['family_id']}", now)
                reused = True
            else:
                user = await store.user_by_id(conn, row["user_id"])
                if user is None or user["disabled"]:
                    await store.revoke_family(conn, row["family_id"], now)
                    raise unauthenticated("refresh token is not valid", reason="REFRESH_TOKEN_INVALID")
                started = row["session_started_at"]
                if self.tokens.session_ends(started, user["role"]) <= now:
                    # Its absolute lifetime is over (an admin's, shorter, may end before the
                    # token would): sign in again.
                    await store.revoke_family(conn, row["family_id"], now)
                    raise unauthenticated("the session has ended; sign in again", reason="SESSION_EXPIRED")
                await store.mark_rotated(conn, row["id"], now)
                pair = await self._issue(conn, user, row["family_id"], now, started=started)
        if reused:
            log.warning("refresh token reuse; session revoked", user_id=str(row["user_id"]))
            raise unauthenticated("refresh token was already used", reason="REFRESH_TOKEN_REUSED")
        return await self._answer(context, pair, bool(request.refresh_token) or request.return_refresh_token)

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:
        """Ends the session: its refresh tokens are revoked and its access tokens cut off (the
        caller's own session too, when the call carries an access token)."""
        now = self._now()
        caller = identity.current()
        presented = request.refresh_token or cookies.read(context.invocation_metadata(), cookies.REFRESH)
        async with self.engine.begin() as conn:
            if presented:
                row = await store.refresh_by_hash(conn, tokens.hash_refresh_token(presented))
                if row is not None:
                    await store.revoke_family(conn, row["family_id"], now)
                    await store.cut_off(conn, f"session:{row['family_id']}", now)
            if caller is not None and caller.session_id:
                # The bearer's session ends whole: its refresh tokens too, not only its access.
                await store.revoke_family(conn, uuid.UUID(caller.session_id), now)
                await store.cut_off(conn, f"session:{caller.session_id}", now)
        await context.send_initial_metadata([*cookies.cleared(self.secure), *NO_STORE])
        return auth_pb2.LogoutResponse()

    async def ListTokenCutoffs(
        self, request: auth_pb2.ListTokenCutoffsRequest, context: Context
    ) -> auth_pb2.ListTokenCutoffsResponse:
        return auth_pb2.ListTokenCutoffsResponse(
            cutoffs=[
                auth_pb2.TokenCutoff(sequence=c[0], subject=c[1], not_before_ms=c[2])
                for c in await self.cutoffs_after(request.after_sequence)
            ]
        )

    async def cutoffs_after(self, after: int) -> list[tuple[int, str, int]]:
        """Cut-offs after a sequence; from 0, those younger than an access token can live."""
        if after < 0:
            raise invalid_argument({"after_sequence": "must not be negative"})
        newer = self._now() - self.tokens.access_ttl * 2
        async with self.engine.connect() as conn:
            rows = await store.cutoffs_after(conn, after, newer)
        return [(r["sequence"], r["subject"], int(r["not_before"].timestamp() * 1000)) for r in rows]

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.Jwks:
        self.keyring.refresh_if_changed()
        return auth_pb2.Jwks(keys=[auth_pb2.Jwk(**k) for k in self.keyring.jwks()])

    async def IssueServiceToken(
        self, request: auth_pb2.IssueServiceTokenRequest, context: Context
    ) -> auth_pb2.TokenPair:
        expected = self.service_clients.get(request.client_id)
        if expected is None or not hmac.compare_digest(expected.encode(), request.client_secret.encode()):
            raise unauthenticated("invalid client credentials", reason=INVALID_CREDENTIALS)
        self.keyring.refresh_if_changed()
        key = self.keyring.active
        access = tokens.issue_access_token(
            key=key.private,
            kid=key.kid,
            user_id=f"service:{request.client_id}",
            role="service",
            now=self._now(),
            settings=self.tokens,
        )
        await context.send_initial_metadata(NO_STORE)
        return auth_pb2.TokenPair(
            access_token=access, token_type="Bearer", expires_in=int(self.tokens.access_ttl.total_seconds())
        )

    # --- authenticated RPCs ---------------------------------------------------------------

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: Context) -> auth_pb2.User:
        caller = identity.require()
        async with self.engine.connect() as conn:
            user = await store.user_by_id(conn, parse_uuid(caller.user_id, "user"))
        if user is None:
            raise not_found("user")
        return user_pb(user)

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        caller = identity.require()
        async with self.engine.connect() as conn:
            user = await store.user_by_id(conn, parse_uuid(caller.user_id, "user"))
        if user is None:
            raise not_found("user")
        why = passwords.policy_violation(request.new_password, user["email"])
        if why:
            raise invalid_argument({"new_password": why})
        # The current password is checked like a login's, on the same account counter: a
        # stolen session cannot guess it faster than a login could.
        account_key, now = f"account:{user['email_key']}", self._now()
        async with self.checking.hold(account_key):
            async with self.engine.begin() as conn:
                await self._reserve(conn, account_key, now)
            if not await asyncio.to_thread(self.hasher.verify, user["password_hash"], request.current_password):
                raise invalid_argument({"current_password": "is not correct"})
        new_hash = await asyncio.to_thread(self.hasher.hash, request.new_password)
        async with self.engine.begin() as conn:
            await store.clear_throttle(conn, account_key)
            await store.update_user(conn, user["id"], now, password_hash=new_hash)
            await store.revoke_user_tokens(conn, user["id"], now)
            await store.cut_off(conn, f"user:{user['id']}", now)
        return auth_pb2.ChangePasswordResponse()
