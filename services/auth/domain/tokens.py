"""Access tokens: short-lived EdDSA JWTs; refresh tokens: opaque, stored as hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class TokenSettings:
    issuer: str = "tradesense-auth"
    audience: str = "tradesense"
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=14)
    service_audience: str = "tradesense-internal"
    # A session ends this long after its login however often it is refreshed (an admin's sooner).
    session_lifetime: timedelta = timedelta(days=30)
    admin_session_lifetime: timedelta = timedelta(hours=12)

    def session_ends(self, started: datetime, role: str) -> datetime:
        return started + (self.admin_session_lifetime if role == "admin" else self.session_lifetime)


def issue_access_token(
    *,
    key: Ed25519PrivateKey,
    kid: str,
    user_id: str,
    role: str,
    now: datetime,
    settings: TokenSettings,
    session_id: str = "",
) -> str:
    claims: dict[str, object] = {
        "iss": settings.issuer,
        "aud": settings.service_audience if role == "service" else settings.audience,
        "sub": user_id,
        "role": role,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + settings.access_ttl).timestamp()),
        "jti": str(uuid.uuid4()),
        # When, to the millisecond (iat is whole seconds): a cut-off refuses tokens issued
        # before it, and a login right after a password change must still work.
        "iat_ms": int(now.timestamp() * 1000),
    }
    if session_id:
        claims["sid"] = session_id  # the refresh family: logging out cuts this session off
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})


def new_refresh_token() -> tuple[str, bytes]:
    """The opaque token for the client and the hash we store (never the token itself)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
