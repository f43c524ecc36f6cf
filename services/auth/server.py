"""Wiring for the auth service."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import structlog
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc

from services.auth import store
from services.auth.domain import emails
from services.auth.domain.passwords import Hasher
from services.auth.domain.throttle import ThrottlePolicy
from services.auth.domain.tokens import TokenSettings
from services.auth.keyring import KeyRing
from services.auth.servicer import AuthServicer
from services.common.auth_interceptor import AuthInterceptor
from services.common.client_address import ClientAddresses
from services.common.config import ServiceSettings
from services.common.jwt_verify import KeySet, TokenVerifier
from services.common.remote_auth import stream_limits
from services.common.revocations import Revocations
from services.common.server import Runtime, ServiceSpec, Wiring

HERE = Path(__file__).resolve().parent
log = structlog.get_logger("auth")


class AuthSettings(ServiceSettings):
    auth_keys_dir: Path = Path(".data/auth-keys")
    auth_generate_keys: bool = True  # off in production: keys come from a Secret
    refresh_token_ttl_days: int = 14
    # A session's absolute lifetime from its login, however often refreshed; an admin's shorter.
    auth_session_max_days: float = 30
    auth_admin_session_max_hours: float = 12
    login_free_failures: int = 5
    login_lock_base_seconds: float = 30.0
    login_lock_max_seconds: float = 900.0
    login_failure_window_seconds: float = 900.0
    login_address_free_failures: int = 20
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    # "challenges=secret,risk=secret": client credentials of the services.
    service_clients: SecretStr = SecretStr("")
    # First administrator, created (or promoted) at start-up when both are set.
    auth_bootstrap_admin_email: str = ""
    auth_bootstrap_admin_password: SecretStr = SecretStr("")
    # The session cookies' Secure flag: on behind TLS (production); `make run` serves plain
    # HTTP on loopback and turns it off.
    auth_cookie_secure: bool = True


class BootstrapRefused(RuntimeError):
    """The bootstrap address belongs to an account that is not an admin: promoting it would
    hand the platform to whoever registered that address first."""


async def ensure_admin(engine: AsyncEngine, hasher: Hasher, email: str, password: str) -> None:
    """Create the first administrator, once: only when no account has the address. An admin
    with it is left alone (its password is its own now); a non-admin with it stops the start."""
    normalised = emails.normalise(email)
    if normalised is None:
        raise ValueError("AUTH_BOOTSTRAP_ADMIN_EMAIL is not an email address")
    password_hash = await asyncio.to_thread(hasher.hash, password)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('auth-bootstrap'))"))  # replicas at once
        user = await store.user_by_email_key(conn, normalised[1])
        if user is None:
            created = await store.insert_user(
                conn,
                email=normalised[0],
                email_key=normalised[1],
                display_name="Administrator",
                password_hash=password_hash,
                now=datetime.now(UTC),
            )
            assert created is not None
            await store.update_user(conn, created["id"], datetime.now(UTC), role="admin")
            log.info("bootstrap admin created", user_id=str(created["id"]))
        elif user["role"] != "admin":
            log.error(
                "AUTH_BOOTSTRAP_ADMIN_EMAIL names an existing account that is not an admin; refusing to start. "
                "Make an admin in the console or unset the variable.",
                user_id=str(user["id"]),
            )
            raise BootstrapRefused("AUTH_BOOTSTRAP_ADMIN_EMAIL names a non-admin account")


def parse_service_clients(raw: str) -> dict[str, str]:
    out = {}
    for item in raw.split(","):
        name, sep, secret = item.strip().partition("=")
        if sep and name and secret:
            out[name] = secret
    return out


async def setup(runtime: Runtime) -> Wiring:
    s: AuthSettings = runtime.settings
    keyring = KeyRing(s.auth_keys_dir, generate_if_empty=s.auth_generate_keys)

    async def local_jwks() -> list[dict[str, str]]:
        keyring.refresh_if_changed()  # picks up an added key without a restart
        return keyring.jwks()

    keys = KeySet(local_jwks)
    keys.load(keyring.jwks())
    hasher = Hasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib)
    if s.auth_bootstrap_admin_email and s.auth_bootstrap_admin_password.get_secret_value():
        await ensure_admin(
            runtime.engine, hasher, s.auth_bootstrap_admin_email, s.auth_bootstrap_admin_password.get_secret_value()
        )
    servicer = AuthServicer(
        engine=runtime.engine,
        keyring=keyring,
        token_settings=TokenSettings(
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            access_ttl=timedelta(seconds=s.access_token_ttl_seconds),
            refresh_ttl=timedelta(days=s.refresh_token_ttl_days),
            service_audience=s.jwt_service_audience,
            session_lifetime=timedelta(days=s.auth_session_max_days),
            admin_session_lifetime=timedelta(hours=s.auth_admin_session_max_hours),
        ),
        hasher=hasher,
        throttle=ThrottlePolicy(s.login_free_failures, s.login_lock_base_seconds, s.login_lock_max_seconds),
        service_clients=parse_service_clients(s.service_clients.get_secret_value()),
        address_free_failures=s.login_address_free_failures,
        secure_cookies=s.auth_cookie_secure,
        failure_window=timedelta(seconds=s.login_failure_window_seconds),
        addresses=ClientAddresses(s.trusted_proxies),
    )

    def register(server: grpc.aio.Server) -> list[str]:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
        return [auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name]

    # Auth follows its own cut-offs like every service, reading its table directly.
    revocations = Revocations()
    runtime.spawn(
        revocations.follow(servicer.cutoffs_after, s.access_token_ttl_seconds * 1000 * 2, time.time), "token-cutoffs"
    )
    runtime.spawn(prune_cutoffs(runtime.engine, timedelta(seconds=s.access_token_ttl_seconds * 2)), "prune-cutoffs")
    verifier = TokenVerifier(keys, s.jwt_issuer, s.jwt_audience, service_audience=s.jwt_service_audience)
    return Wiring(
        register, [AuthInterceptor(verifier, revocations, stream_limits(s), ClientAddresses(s.trusted_proxies))]
    )


async def prune_cutoffs(engine: AsyncEngine, keep: timedelta) -> None:
    """Cut-offs older than any token they could refuse are deleted, hourly."""
    while True:
        async with engine.begin() as conn:
            await store.prune_cutoffs(conn, datetime.now(UTC) - keep)
        await asyncio.sleep(3600)


SPEC = ServiceSpec(
    name="auth",
    grpc_port=50051,
    metrics_port=9101,
    migrations=HERE / "migrations",
    setup=setup,
    settings_cls=AuthSettings,
)
